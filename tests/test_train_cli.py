"""`python -m bot train`: a GAN trained from a folder on the command line, resumable, with its outputs."""

import argparse

import pytest
import torch
from PIL import Image

from bot.art.gan import GanTrainer
from bot.train_cli import add_train_command


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_train_command(parser.add_subparsers())
    args = parser.parse_args(["train", *argv])
    return args.func(args)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVICE", "cpu")
    images = tmp_path / "images"
    (images / "more").mkdir(parents=True)
    for index, colour in enumerate([(250, 0, 0), (0, 250, 0), (0, 0, 250), (250, 250, 0)]):
        Image.new("RGB", (40, 30), colour).save(images / ("more" if index % 2 else ".") / f"{index}.png")
    (images / "notes.txt").write_text("not an image: not read")
    return images


def test_trains_saves_its_outputs_and_goes_on_from_the_checkpoint(folder, tmp_path, capsys):
    out = tmp_path / "out"
    options = ["--images", str(folder), "--out", str(out), "--size", "32", "--width", "8", "--save-every", "2"]
    assert run(*options, "--steps", "4") == 0
    assert "4 images at 32 px" in capsys.readouterr().out
    assert {path.name for path in out.iterdir()} == {"checkpoint.pt", "grid-0000002.png", "grid-0000004.png",
                                                     "samples.png", "losses.png", "walk.gif"}
    assert Image.open(out / "walk.gif").n_frames > 1
    assert run(*options, "--steps", "6") == 0
    assert "from step 4 to 6" in capsys.readouterr().out
    assert GanTrainer.load(out / "checkpoint.pt", torch.device("cpu")).step == 6
    assert run(*options[:-4], "--width", "16", "--save-every", "2", "--steps", "8") == 2  # other options, same out
    assert "other options" in capsys.readouterr().err


def test_a_folder_without_usable_images_is_refused(tmp_path, folder, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run("--images", str(empty), "--out", str(tmp_path / "a")) == 2
    assert "No images" in capsys.readouterr().err
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    assert run("--images", str(folder), "--out", str(tmp_path / "b"), "--size", "32", "--width", "8") == 2
    assert "could not be used" in capsys.readouterr().err
