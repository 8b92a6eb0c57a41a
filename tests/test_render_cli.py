import argparse
import json
import re

import pytest
from PIL import Image, ImageDraw

from bot.art.imagefiles import read_png_metadata
from bot.jobs.spec import JobSpec
from bot.render_cli import TECHNIQUE_NAMES, add_render_command


@pytest.fixture
def render(tmp_path, monkeypatch):
    """`python -m bot render ...` without the rest of the CLI; settings from a clean environment."""
    monkeypatch.chdir(tmp_path)  # no .env from the repository
    for name in ("DEVICE", "DATA_DIR", "VGG_WEIGHTS", "CLIP_PRETRAINED", "PROGRESS_EVERY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DEVICE", "cpu")
    parser = argparse.ArgumentParser()
    add_render_command(parser.add_subparsers(dest="command"))

    def render(*argv: str) -> int:
        args = parser.parse_args(["render", *argv])
        return args.func(args)

    return render


def test_render_cppn(render, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["cppn", "--seed", "7", "--size", "48", "--steps", "12", "--layers", "3", "--out", str(out)]
    assert render(*argv) == 0
    output = capsys.readouterr()
    assert "out/cppn-7.png" in output.out
    bar = output.err.split("\r")[-1]  # tqdm redraws its line; the last drawing is the finished bar
    assert "100%" in bar and "12/12" in bar and bar.endswith("\n")
    assert "loss" not in bar  # a cppn without a target image has no loss to show
    metadata = read_png_metadata(out / "cppn-7.png")
    assert metadata["Device"] == "cpu"  # the same seed gives the same image on the same kind of device
    spec = JobSpec.from_dict(json.loads(metadata["easel"]))
    assert (spec.technique, spec.seed, spec.config.size, spec.config.layers) == ("cppn", 7, 48, 3)
    assert Image.open(out / "cppn-7.png").size == (48, 48)
    assert Image.open(out / "cppn-7.gif").n_frames == 2  # progress every 10 steps, and the last


def test_render_nca(render, tmp_path, capsys):
    target = Image.new("RGBA", (24, 24), (0, 0, 0, 0))
    ImageDraw.Draw(target).rectangle((6, 6, 18, 18), fill=(40, 160, 60, 255))
    target.save(tmp_path / "emoji.png")
    argv = ["--out", str(tmp_path), "nca", "--target", "emoji.png", "--steps", "2", "--seed", "3",
            "--size", "32", "--grid", "12", "--rollout", "2", "--pool-size", "4", "--batch-size", "2",
            "--growth-frames", "3"]
    assert render(*argv) == 0
    bar = capsys.readouterr().err.split("\r")[-1]
    assert "2/2" in bar and re.search(r"loss=\d", bar)
    assert read_png_metadata(tmp_path / "nca-3.png")["Seed"] == "3"
    assert Image.open(tmp_path / "nca-3.gif").format == "GIF"  # identical frames merge, so no count


def test_missing_weights_exit_1(render, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VGG_WEIGHTS", "torchvision")
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "empty"))
    Image.new("RGB", (40, 40)).save(tmp_path / "a.png")
    assert render("dream", "--image", "a.png", "--steps", "2", "--out", str(tmp_path)) == 1
    assert "VGG_WEIGHTS=torchvision" in capsys.readouterr().err


def test_bad_options_and_images_exit_2(render, tmp_path, capsys):
    assert render("cppn", "--size", "5") == 2
    assert "size must be between 16 and 4096" in capsys.readouterr().err
    (tmp_path / "notes.png").write_text("not an image")
    assert render("nca", "--target", "notes.png", "--steps", "1", "--grid", "12") == 2
    assert "PNG, JPEG, WebP or GIF" in capsys.readouterr().err


def pixels(path):
    with Image.open(path) as image:
        return image.convert("RGBA").tobytes(), image.size


def test_render_from_a_recipe_makes_the_same_image(render, tmp_path, capsys):
    argv = ["cppn", "--seed", "7", "--size", "48", "--steps", "12", "--layers", "3", "--zoom", "2.5"]
    assert render(*argv, "--out", str(tmp_path / "first")) == 0
    recipe = tmp_path / "first" / "cppn-7.png"
    capsys.readouterr()
    assert render("--from", str(recipe), "--out", str(tmp_path / "again")) == 0
    assert "recipe from" in capsys.readouterr().err
    assert pixels(tmp_path / "again" / "cppn-7.png") == pixels(recipe)
    assert read_png_metadata(tmp_path / "again" / "cppn-7.png")["easel"] == read_png_metadata(recipe)["easel"]


def test_options_after_the_recipe_override_it(render, tmp_path):
    assert render("cppn", "--seed", "7", "--size", "48", "--steps", "4", "--layers", "3", "--out", "first") == 0
    assert render("--out", "bigger", "--from", "first/cppn-7.png", "--size", "64", "--seed", "9") == 0
    spec = JobSpec.from_dict(json.loads(read_png_metadata(tmp_path / "bigger" / "cppn-9.png")["easel"]))
    assert (spec.seed, spec.config.size, spec.config.layers, spec.config.steps) == (9, 64, 3, 4)
    assert Image.open(tmp_path / "bigger" / "cppn-9.png").size == (64, 64)


def test_recipe_input_images_must_be_given_again_unless_they_are_here(render, tmp_path, capsys):
    target = Image.new("RGBA", (24, 24), (0, 0, 0, 0))
    ImageDraw.Draw(target).rectangle((6, 6, 18, 18), fill=(40, 160, 60, 255))
    (tmp_path / "inputs").mkdir()
    target.save(tmp_path / "inputs" / "emoji.png")
    small = ["--steps", "1", "--seed", "3", "--size", "32", "--grid", "12", "--rollout", "2", "--pool-size", "4",
             "--batch-size", "2", "--growth-frames", "3"]
    assert render("nca", "--target", "inputs/emoji.png", *small, "--out", "first") == 0
    assert render("--from", "first/nca-3.png", "--out", "here") == 0  # the recorded path exists here
    assert pixels(tmp_path / "here" / "nca-3.png") == pixels(tmp_path / "first" / "nca-3.png")

    (tmp_path / "inputs" / "emoji.png").rename(tmp_path / "moved.png")
    capsys.readouterr()
    assert render("--from", "first/nca-3.png", "--out", "gone") == 2
    error = capsys.readouterr().err
    assert "--target FILE (it used 'emoji.png')" in error and "not on this machine" in error
    assert render("--from", "first/nca-3.png", "--target", "moved.png", "--out", "given") == 0
    assert pixels(tmp_path / "given" / "nca-3.png") == pixels(tmp_path / "first" / "nca-3.png")


def test_render_from_refuses_what_is_not_a_recipe(render, tmp_path, capsys):
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    assert render("--from", "plain.png") == 2
    assert "This PNG has no Easel recipe" in capsys.readouterr().err
    assert render("--from", "missing.png") == 2
    assert "Could not read 'missing.png'" in capsys.readouterr().err
    assert render("--from") == 2
    assert "--from needs the PNG file" in capsys.readouterr().err
    assert render("cppn", "--from", "plain.png") == 2
    assert "replaces the technique" in capsys.readouterr().err
    assert render() == 2
    assert "name a technique" in capsys.readouterr().err
    assert render("cppn", "--size", "48", "--steps", "2", "--seed", "1", "--out", "first") == 0
    assert render("--from", "first/cppn-1.png", "--size", "5") == 2
    assert "size must be between 16 and 4096" in capsys.readouterr().err


def test_the_help_names_every_technique():
    from bot.art.techniques import TECHNIQUES

    assert set(TECHNIQUE_NAMES) == set(TECHNIQUES)
