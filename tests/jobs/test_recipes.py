import io
import json
import struct
import threading
import zlib
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from bot.art.imagefiles import read_png_metadata, read_png_text, save_png
from bot.art.models import ModelChoice
from bot.jobs.parser import Limits, parse_job
from bot.jobs.recipes import RecipeError, read_recipe, recipe_options, recipe_text
from bot.jobs.spec import JobSpec
from bot.jobs.worker import GpuWorker
from bot.ui.publisher import DiscordPublisher

LIMITS = Limits(max_steps=1000, max_size=1024)
MAX = 1_000_000


def spec_of(technique, text, seed=7):
    return parse_job(technique, {}, limits=LIMITS, text=text, seed=seed).spec


def png_with(tmp_path, metadata, size=(8, 8)):
    path = tmp_path / "r.png"
    save_png(Image.new("RGB", size, (200, 30, 30)), path, metadata)
    return path.read_bytes()


def easel_png(tmp_path, job):
    return png_with(tmp_path, {"easel": job if isinstance(job, str) else json.dumps(job)})


# --- the parameters chunk ----------------------------------------------------------------------------


def test_parameters_for_imagine_follow_the_webui_convention():
    spec = spec_of("imagine", 'a lighthouse, at night | fog:0.5 --no "blurry, text" --param pixels --steps 150 '
                              "--init-image /srv/easel/data/uploads/3f2a.png --lr 0.0123456789")
    metadata = spec.png_metadata(device="cuda", job_id=12, image_size=(256, 256))
    prompt, negative, settings = metadata["parameters"].split("\n")
    assert prompt == "a lighthouse, at night | fog:0.5"
    assert negative == "Negative prompt: blurry, text"
    assert settings.startswith("Steps: 150, Seed: 7, Size: 256x256, Technique: imagine, Param: pixels, Cutn: 32, ")
    assert "Lr: 0.0123456789" in settings  # exact, not rounded
    assert "Tv weight: 0.05" in settings and "Init strength: 0.5" in settings
    assert "Init image: 3f2a.png" in settings and "/srv" not in metadata["parameters"]
    assert "Image prompt:" not in settings  # not given: left out
    assert settings.endswith("Device: cuda")


def test_parameters_for_cppn_have_no_prompt_line_and_quote_what_needs_it():
    spec = spec_of("cppn", "--size 64 --zoom 2.5 --colour hsv", seed=5)
    assert spec.png_metadata(image_size=(64, 64))["parameters"] == (
        "Steps: 120, Seed: 5, Size: 64x64, Technique: cppn, Layers: 8, Width: 32, Zoom: 2.5, Z scale: 1, "
        "Colour: hsv, Lr: 0.01"
    )
    spec = spec_of("nca", '--target "C:\\Users\\ana\\a, b.png" --steps 10', seed=5)
    assert 'Target: "a, b.png"' in spec.parameters_text()  # a comma would split the pair


def test_parameters_for_compare_name_the_compared_values_and_not_the_base_value():
    spec = spec_of("compare", "a lighthouse --what cutn --values 4,8 --cutn 64", seed=3)
    settings = spec.png_metadata(image_size=(600, 330))["parameters"].split("\n")[1]
    assert settings.startswith('Steps: 200, Seed: 3, Size: 256, Technique: compare, What: cutn, Values: "4, 8", ')
    assert "Cutn" not in settings


def test_png_metadata_records_the_job_number_and_from_dict_ignores_it():
    spec = spec_of("cppn", "--size 64")
    stored = json.loads(spec.png_metadata(device="cpu", job_id=42)["easel"])
    assert stored["job"] == 42 and stored["device"] == "cpu"
    assert JobSpec.from_dict(stored) == spec
    assert "job" not in json.loads(spec.png_metadata()["easel"])


# --- the posted file keeps its recipe ------------------------------------------------------------


@pytest.fixture
async def worker_result(tmp_path):
    """A cppn result saved by the worker, as the bot saves every job's result."""
    worker = GpuWorker(ModelChoice(weights_dir=tmp_path), "cpu", tmp_path / "results", progress_every=2)
    spec = spec_of("cppn", "--size 384 --steps 2 --layers 3 --zoom 3", seed=11)
    try:
        output = await worker.run(42, spec, lambda event: None, threading.Event())
    finally:
        worker.shutdown()
    job = SimpleNamespace(id=42, result_path=str(output.image_path), animation_path=str(output.animation_path))
    return spec, job


def posted_image(job, limit):
    files, name = DiscordPublisher(None, None, None).result_files(job, limit)
    assert files[0].filename == name
    return files[0].fp.getvalue(), name


def test_the_posted_png_carries_the_stored_text_chunks(worker_result):
    spec, job = worker_result
    stored = read_png_metadata(job.result_path)
    assert json.loads(stored["easel"])["job"] == 42 and "Size: 384x384" in stored["parameters"]
    data, name = posted_image(job, 10 * 1024 * 1024)
    assert name == "easel-42.png"
    assert read_png_text(data, max_bytes=MAX) == stored
    recipe = read_recipe(data, max_bytes=MAX)
    assert (recipe.spec, recipe.job_id, recipe.device) == (spec, 42, "cpu")


def test_a_result_too_big_for_the_budget_is_shrunk_as_a_png_with_its_recipe(worker_result):
    spec, job = worker_result
    stored_size = Path(job.result_path).stat().st_size
    chart = Path(job.result_path).with_name("loss.png").stat().st_size
    limit = 2 * (stored_size * 3 // 4) + chart  # the image's half of the budget: 3/4 of its PNG
    data, name = posted_image(job, limit)
    assert name.endswith(".png") and len(data) <= stored_size * 3 // 4
    assert Image.open(io.BytesIO(data)).width < 384
    assert read_png_text(data, max_bytes=MAX) == read_png_metadata(job.result_path)
    assert read_recipe(data, max_bytes=MAX).spec == spec  # the recipe still makes the full-size image


# --- reading a recipe -----------------------------------------------------------------------------


def test_read_recipe_from_a_real_result(worker_result):
    spec, job = worker_result
    recipe = read_recipe(Path(job.result_path).read_bytes(), max_bytes=MAX)
    assert recipe.spec == spec and recipe.job_id == 42 and recipe.device == "cpu"
    assert recipe_text(recipe).startswith("cppn · seed 11 · size=384 · steps=2")
    options, images = recipe_options(recipe)
    assert images == {}
    assert options["seed"] == 11 and options["zoom"] == 3.0 and options["colour"] == "rgb"
    assert parse_job("cppn", options, limits=LIMITS).spec == spec  # submitted again: the same job


def test_a_compare_recipe_reads_back_and_counts_its_variants_when_queued_again(tmp_path):
    spec = parse_job("compare", {}, limits=Limits(max_steps=20_000, max_size=1024),
                     text="a lighthouse --what seed --values 1,2,3,4 --steps 5000", seed=3).spec
    recipe = read_recipe(png_with(tmp_path, spec.png_metadata(job_id=8)), max_bytes=MAX)
    assert recipe.spec == spec and recipe.job_id == 8  # a recipe holds to the fields' own ranges only
    assert recipe_text(recipe).startswith("compare · seed 3 · prompt='a lighthouse' · what='seed' · "
                                          "values='1, 2, 3, 4'")
    again = parse_job("compare", recipe_options(recipe)[0], limits=LIMITS)
    assert again.spec.config.steps == 250 and "× 4 variants" in again.notes[0]


def test_image_fields_are_kept_but_named_only_by_file_name(tmp_path):
    spec = spec_of("style", "--content /srv/easel/data/uploads/ab12.png --style /srv/easel/data/uploads/cd34.jpg")
    recipe = read_recipe(png_with(tmp_path, spec.png_metadata(job_id=5)), max_bytes=MAX)
    assert (recipe.spec.config.content, recipe.spec.config.style) == ("ab12.png", "cd34.jpg")  # a bot job: names only
    local = read_recipe(png_with(tmp_path, spec.png_metadata()), max_bytes=MAX)
    assert local.spec == spec  # a local render keeps the paths, so render --from finds the files
    text = recipe_text(recipe)
    assert "/srv" not in text and "ab12.png" in text and "cd34.jpg" in text and "attach again" in text
    assert "job #5" in text
    options, images = recipe_options(recipe)
    assert images == {"content": "ab12.png", "style": "cd34.jpg"}
    assert "content" not in options and "style" not in options and options["seed"] == 7


def test_refuses_a_png_without_a_recipe(tmp_path):
    with pytest.raises(RecipeError, match="This PNG has no Easel recipe"):
        read_recipe(png_with(tmp_path, {"parameters": "a cat\nSteps: 20, Seed: 1"}), max_bytes=MAX)


def test_refuses_files_that_are_not_pngs(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="JPEG")
    for data in (buffer.getvalue(), b"hello", b""):
        with pytest.raises(RecipeError, match="no Easel recipe: That file is not a PNG"):
            read_recipe(data, max_bytes=MAX)


def test_refuses_an_oversized_file_before_reading_it(tmp_path):
    data = easel_png(tmp_path, spec_of("cppn", "--size 64").to_dict())
    with pytest.raises(RecipeError, match="limit is"):
        read_recipe(data, max_bytes=len(data) - 1)
    assert read_recipe(data, max_bytes=len(data)).spec.technique == "cppn"


def good_job():
    return spec_of("cppn", "--size 64 --steps 10").to_dict()


def changed(**changes):
    job = good_job()
    for key, value in changes.items():
        if key.startswith("config_"):
            job["config"][key.removeprefix("config_")] = value
        else:
            job[key] = value
    return job


@pytest.mark.parametrize(
    ("job", "message"),
    [
        (changed(technique="teleport"), "Unknown technique 'teleport'"),
        (changed(config_size=5), "size must be between 16 and 4096"),
        (changed(config_steps=10**9), "steps must be between"),
        (changed(config_colour="ultraviolet"), "colour must be one of"),
        (changed(config_sharpness=3), "Unknown option --sharpness"),
        (changed(config_seed=3), "cppn has no option 'seed'"),  # the parser would take it as the seed
        (changed(config_Size=64), "cppn has no option 'Size'"),
        (changed(config_size="64"), "option 'size' has a value of the wrong type"),
        (changed(config_size=True), "--size must be a whole number"),
        (changed(config_zoom=[1, 2]), "option 'zoom' is not a single value"),
        (changed(config_target="x" * 10_000), "10,000 characters long"),
        (changed(seed="7"), "seed must be a whole number"),
        (changed(seed=-1), "seed must be a whole number"),
        (changed(job="42"), "job number"),
        (changed(device={"x": 1}), "device"),
        (changed(owner="me"), "unknown key 'owner'"),
        (changed(config=[]), "config is not a set of options"),
        ({"technique": "cppn", "seed": 1}, "it has no config"),
        ([1, 2, 3], "it is not a job"),
        ("{not json", "not valid JSON"),
        ("[" * 50_000 + "]" * 50_000, "far too long"),
        ("[" * 30_000, "not valid JSON"),
    ],
)
def test_refuses_a_malformed_or_hostile_recipe(tmp_path, job, message):
    with pytest.raises(RecipeError, match=message):
        read_recipe(easel_png(tmp_path, job), max_bytes=MAX)


def test_refuses_an_imagine_prompt_the_parser_refuses(tmp_path):
    job = spec_of("imagine", "a fox").to_dict()
    job["config"]["prompt"] = "a fox:-1"  # no text with a positive weight
    with pytest.raises(RecipeError, match="cannot be used"):
        read_recipe(easel_png(tmp_path, job), max_bytes=MAX)


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_refuses_a_compressed_text_bomb(tmp_path):
    data = png_with(tmp_path, {})
    bomb = chunk(b"zTXt", b"easel\0\0" + zlib.compress(b" " * 50_000_000, 9))
    hostile = data[:-12] + bomb + data[-12:]  # before IEND
    with pytest.raises(RecipeError, match="far too large"):
        read_recipe(hostile, max_bytes=MAX)


def test_reads_a_recipe_after_the_pixels_and_refuses_a_damaged_one(tmp_path):
    data = png_with(tmp_path, {})
    text = chunk(b"iTXt", b"easel\0\0\0\0\0" + json.dumps(good_job()).encode())
    late = data[:-12] + text + data[-12:]  # after IDAT, before IEND
    assert read_recipe(late, max_bytes=MAX).spec.config.size == 64
    damaged = late[:-20] + bytes([late[-20] ^ 1]) + late[-19:]  # a byte of the recipe chunk flipped
    with pytest.raises(RecipeError, match="checksum"):
        read_recipe(damaged, max_bytes=MAX)
