import json

import pytest

from bot.jobs.parser import Limits, parse_job
from bot.jobs.spec import JobSpec

LIMITS = Limits(max_steps=1000, max_size=1024)


@pytest.mark.parametrize(
    ("technique", "text"),
    [
        ("imagine", 'a lighthouse in a storm | fog:0.5 --steps 150 --no "blurry, text" --param pixels'),
        ("cppn", "--size 256 --zoom 2.5 --colour hsv"),
        ("nca", "--target emoji.png --fire-rate 0.25"),
        ("style", "--content a.png --style b.png --style-weight 1e5"),
        ("dream", "--image a.png --layer relu5_1 --octave-scale 1.5"),
        ("compare", "a lighthouse --what lr --values 0.01,0.1 --steps 100"),
    ],
)
def test_round_trip_through_json(technique, text):
    spec = parse_job(technique, {}, limits=LIMITS, text=text, seed=42).spec
    stored = json.loads(json.dumps(spec.to_dict()))
    assert JobSpec.from_dict(stored) == spec
    assert stored["technique"] == technique and stored["seed"] == 42


def test_describe_shows_seed_limits_and_changed_options():
    spec = parse_job("imagine", {}, limits=LIMITS, text="a red fox --no blurry --cutn 16", seed=7).spec
    text = spec.describe()
    assert text.startswith("imagine · seed 7")
    assert "prompt='a red fox'" in text and "no='blurry'" in text and "cutn=16" in text
    assert "steps=" in text and "size=" in text  # limited fields are always shown
    assert "lr=" not in text  # defaults are not


def test_describe_shows_the_values_a_compare_tries_and_not_the_base_value_it_replaces():
    spec = parse_job("compare", {}, limits=LIMITS, text="a red fox --what lr --lr 0.2 --cutn 16", seed=7).spec
    text = spec.describe()
    assert text.startswith("compare · seed 7") and "what='lr'" in text and "cutn=16" in text
    assert "values='0.01, 0.05, 0.2'" in text and "lr=" not in text  # each variant has its own lr
    seeds = parse_job("compare", {}, limits=LIMITS, text="a red fox --what seed", seed=7).spec
    assert "values='7, 8, 9'" in seeds.describe()
    assert seeds.to_dict()["config"]["values"] is None  # stored as given: the job's seed makes the values


def test_png_metadata_holds_the_whole_job():
    spec = parse_job("cppn", {}, limits=LIMITS, text="--size 64", seed=5).spec
    metadata = spec.png_metadata()
    assert JobSpec.from_dict(json.loads(metadata["easel"])) == spec
    assert metadata["Seed"] == "5" and metadata["Technique"] == "cppn"


def test_png_metadata_records_the_device():
    spec = parse_job("cppn", {}, limits=LIMITS, text="--size 64", seed=5).spec
    metadata = spec.png_metadata(device="cuda")
    assert metadata["Device"] == "cuda"
    stored = json.loads(metadata["easel"])
    assert stored["device"] == "cuda" and JobSpec.from_dict(stored) == spec
    assert "Device" not in spec.png_metadata() and "device" not in json.loads(spec.png_metadata()["easel"])
