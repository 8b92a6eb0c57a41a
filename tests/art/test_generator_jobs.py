"""Training a guild's generator in chunks that resume from checkpoints, then sampling and walking it."""

import pytest
import torch
from PIL import Image

from bot.art.technique import RunContext
from bot.art.techniques.generator import (
    CHECKPOINT_FILE,
    DATASET_FILE,
    SAMPLE,
    TRAIN,
    WALK,
    ModelFilesMissing,
    SampleConfig,
    TrainConfig,
    WalkConfig,
    model_folder,
)

CPU = torch.device("cpu")


@pytest.fixture
def workspace(tmp_path):
    """A model folder with 8 small images of coloured squares, as the bot stores a data set."""
    folder = model_folder(tmp_path, 1)
    folder.mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    pixels = torch.zeros(8, 3, 32, 32, dtype=torch.uint8)
    for image in pixels:
        colour = torch.randint(0, 256, (3, 1, 1), generator=generator, dtype=torch.uint8)
        image[:, 8:24, 4:20] = colour
    torch.save(pixels, folder / DATASET_FILE)
    return tmp_path


def context(workspace, **options) -> RunContext:
    return RunContext(device=CPU, models=None, progress_every=2, workspace=workspace, **options)


def config(**changes) -> TrainConfig:
    return TrainConfig(**{"model_id": 1, "steps": 6, "image_size": 32, "chunk_steps": 4, "width": 8} | changes)


def test_training_runs_in_chunks_and_resumes_exactly_where_it_stopped(workspace, tmp_path_factory):
    progress = []
    first = TRAIN.run(config(), seed=3, ctx=context(workspace, on_progress=lambda step, total, grid, metrics:
                                                    progress.append((step, total, set(metrics)))))
    assert first.continues and not first.cancelled and first.steps_done == 4
    assert progress == [(2, 6, {"loss", "discriminator_loss"}), (4, 6, {"loss", "discriminator_loss"})]
    assert (model_folder(workspace, 1) / CHECKPOINT_FILE).exists() and first.chart is not None
    second = TRAIN.run(config(), seed=3, ctx=context(workspace))
    assert not second.continues and second.steps_done == 6
    assert len(second.frames) == 2  # one grid per chunk: the animation of the whole training

    # The same training in one go: the same losses, to the bit, and the same final grid.
    uninterrupted = tmp_path_factory.mktemp("one-go")
    model_folder(uninterrupted, 1).mkdir(parents=True)
    (model_folder(uninterrupted, 1) / DATASET_FILE).write_bytes((model_folder(workspace, 1) / DATASET_FILE)
                                                                 .read_bytes())
    whole = TRAIN.run(config(chunk_steps=6), seed=3, ctx=context(uninterrupted))
    assert whole.losses == second.losses and len(whole.losses) == 6
    assert whole.image.tobytes() == second.image.tobytes()


def test_a_cancelled_chunk_keeps_the_steps_it_did(workspace):
    checks = []

    def cancel_after_three_checks() -> bool:
        checks.append(1)
        return len(checks) > 3

    result = TRAIN.run(config(chunk_steps=6), seed=1, ctx=context(workspace, should_cancel=cancel_after_three_checks))
    assert result.cancelled and 0 < result.steps_done < 6
    resumed = TRAIN.run(config(chunk_steps=6), seed=1, ctx=context(workspace))
    assert resumed.steps_done == 6 and not resumed.continues


def test_sampling_and_walking_a_trained_model(workspace):
    TRAIN.run(config(steps=2), seed=0, ctx=context(workspace))
    grid = SAMPLE.run(SampleConfig(model_id=1, n=4), seed=5, ctx=context(workspace)).image
    again = SAMPLE.run(SampleConfig(model_id=1, n=4), seed=5, ctx=context(workspace)).image
    other = SAMPLE.run(SampleConfig(model_id=1, n=4), seed=6, ctx=context(workspace)).image
    assert grid.tobytes() == again.tobytes() != other.tobytes()
    larger = SAMPLE.run(SampleConfig(model_id=1, n=4, size=64), seed=5, ctx=context(workspace)).image
    assert larger.width > grid.width * 1.8  # 64 px images from a latent grid, not 32 px ones
    with pytest.raises(ValueError, match="not 50"):
        SAMPLE.run(SampleConfig(model_id=1, size=50), seed=0, ctx=context(workspace))

    walk = WALK.run(WalkConfig(model_id=1, frames=8, points=2), seed=2, ctx=context(workspace))
    assert len(walk.frames) == 8 and all(isinstance(frame, Image.Image) for frame in walk.frames)
    assert walk.frames[0].tobytes() != walk.frames[4].tobytes()


def test_a_model_without_files_is_a_clear_failure(tmp_path):
    with pytest.raises(ModelFilesMissing, match="gone"):
        TRAIN.run(config(model_id=9), seed=0, ctx=context(tmp_path))
    with pytest.raises(ModelFilesMissing, match="no checkpoint yet"):
        SAMPLE.run(SampleConfig(model_id=9), seed=0, ctx=context(tmp_path))
    with pytest.raises(ModelFilesMissing, match="bot's own worker"):
        SAMPLE.run(SampleConfig(model_id=9), seed=0, ctx=context(None))
