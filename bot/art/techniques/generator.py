"""Jobs on a guild's own generator (bot/art/gan.py): training it one chunk at a time, sampling it, walking it.

Training is a long job that shares the GPU: each run trains at most `chunk_steps` steps, saves a
checkpoint (both networks, both optimizers, the random stream) in the model's folder, and returns
with `continues` set, so the job goes back to the queue and other people's jobs run before its
next chunk. A chunk cut short (a restart, a cancel) also saves what it did; a crash loses at most
the chunk it was in. Every chunk ends with a grid of samples from the same fixed latents, so the
grid visibly learns, and a chart of both networks' losses.

These jobs are started by /train, /sample and /walk, which check that the model belongs to the
guild; they are not in the parser's registry, so no recipe or typed command can name one.
"""

from __future__ import annotations

import time
from dataclasses import MISSING, dataclass
from pathlib import Path

import torch
from PIL import Image

from bot.art.gan import (
    GanConfig,
    GanTrainer,
    Generator,
    latent_side,
    latent_walk,
    loss_chart,
    random_latents,
    sample_grid,
    training_range,
)
from bot.art.imagefiles import load_image_file
from bot.art.technique import RunContext, RunResult, param, validate_fields

DATASET_FILE = "dataset.pt"  # uint8 [N, 3, S, S], written by the bot when training is asked for
CHECKPOINT_FILE = "checkpoint.pt"
SAMPLES = 16  # images in the grid that each chunk posts


class ModelFilesMissing(RuntimeError):
    """The model's folder is gone (the model was removed) or this worker cannot see it."""


def model_folder(workspace: Path | None, model_id: int) -> Path:
    if workspace is None:
        raise ModelFilesMissing("This worker keeps no models; only the bot's own worker trains and samples them.")
    return workspace / f"model-{model_id}"


def grid_file(folder: Path, step: int) -> Path:
    return folder / f"grid-{step:07d}.png"


@dataclass(frozen=True)
class TrainConfig:
    model_id: int = param(MISSING, min=1, help="the guild's model this job trains")
    steps: int = param(2000, min=1, max=1_000_000, help="training steps in all")
    image_size: int = param(64, help="side of the training images in pixels: 32, 64 or 128")
    mirror: bool = param(True, help="flip each training image left-right half the time")
    chunk_steps: int = param(200, min=1, max=100_000, help="steps in one turn on the GPU")
    width: int = param(64, min=4, max=256, help="channels of the networks' widest block")

    def __post_init__(self) -> None:
        validate_fields(self)
        self.gan()  # raises ValueError for a size the networks cannot take

    def gan(self) -> GanConfig:
        return GanConfig(image_size=self.image_size, mirror=self.mirror, generator_width=self.width,
                         discriminator_width=self.width)


class TrainTechnique:
    name = "train"
    config_type = TrainConfig

    def run(self, config: TrainConfig, seed: int, ctx: RunContext) -> RunResult:
        """Trains one chunk, from the last checkpoint if there is one."""
        started = time.perf_counter()
        folder = model_folder(ctx.workspace, config.model_id)
        checkpoint = folder / CHECKPOINT_FILE
        if not (folder / DATASET_FILE).exists():
            raise ModelFilesMissing("This model's training images are gone: it was removed while it waited.")
        if checkpoint.exists():
            trainer = GanTrainer.load(checkpoint, ctx.device)
        else:
            trainer = GanTrainer(config.gan(), seed, ctx.device, samples=SAMPLES)
        pixels = torch.load(folder / DATASET_FILE, map_location=ctx.device, weights_only=True)  # uint8 [N, 3, S, S]
        images = training_range(pixels)  # [N, 3, S, S] in -1..1

        chunk_end = min(config.steps, trainer.step + config.chunk_steps)
        while trainer.step < chunk_end and not ctx.should_cancel():
            losses = trainer.train_steps(min(ctx.progress_every, chunk_end - trainer.step), images,
                                         ctx.should_cancel)
            if losses.generator:
                metrics = {"loss": losses.generator[-1], "discriminator_loss": losses.discriminator[-1]}
                ctx.on_progress(trainer.step, config.steps, sample_grid(trainer), metrics)
        trainer.save(checkpoint)

        grid = sample_grid(trainer)
        grid.save(grid_file(folder, trainer.step))
        finished = trainer.step >= config.steps
        # The animation: one frame per chunk so far once training ends, this chunk's grid before.
        frames = [load_image_file(path) for path in sorted(folder.glob("grid-*.png"))] if finished else [grid]
        return RunResult(
            image=grid,
            frames=frames,
            losses=trainer.history.generator,
            seconds=time.perf_counter() - started,
            steps_done=trainer.step,
            cancelled=trainer.step < chunk_end,
            notes=[f"trained on {len(images)} images at {config.image_size} px"],
            continues=not finished,
            chart=loss_chart(trainer),
        )


def load_generator(workspace: Path | None, model_id: int, device: torch.device) -> Generator:
    checkpoint = model_folder(workspace, model_id) / CHECKPOINT_FILE
    if not checkpoint.exists():
        raise ModelFilesMissing("This model has no checkpoint yet: wait for its first chunk of training.")
    return GanTrainer.load(checkpoint, device).generator


@dataclass(frozen=True)
class SampleConfig:
    model_id: int = param(MISSING, min=1, help="the guild's model to sample")
    n: int = param(16, min=1, max=64, help="how many images")
    size: int | None = param(None, min=32, max=512, help="side of each image; larger than the training size "
                                                          "feeds the generator a larger latent grid")

    def __post_init__(self) -> None:
        validate_fields(self)


class SampleTechnique:
    name = "sample"
    config_type = SampleConfig

    def run(self, config: SampleConfig, seed: int, ctx: RunContext) -> RunResult:
        started = time.perf_counter()
        generator = load_generator(ctx.workspace, config.model_id, ctx.device)
        side = latent_side(generator.image_size, config.size or generator.image_size)
        grid = sample_grid(generator, random_latents(config.n, generator.latent_dim, seed, side))
        return RunResult(image=grid, frames=[grid], losses=[], seconds=time.perf_counter() - started,
                         steps_done=0)


@dataclass(frozen=True)
class WalkConfig:
    model_id: int = param(MISSING, min=1, help="the guild's model to walk")
    frames: int = param(48, min=8, max=240, help="frames in the looping animation")
    points: int = param(4, min=2, max=12, help="random latents the loop passes through")

    def __post_init__(self) -> None:
        validate_fields(self)


class WalkTechnique:
    name = "walk"
    config_type = WalkConfig

    def run(self, config: WalkConfig, seed: int, ctx: RunContext) -> RunResult:
        started = time.perf_counter()
        generator = load_generator(ctx.workspace, config.model_id, ctx.device)
        frames = latent_walk(generator, seed, config.frames, config.points)
        return RunResult(image=still_of(frames), frames=frames, losses=[], seconds=time.perf_counter() - started,
                         steps_done=0, loops=True)


def still_of(frames: list[Image.Image], count: int = 4) -> Image.Image:
    """A few frames of the walk side by side: the still image posted beside the animation."""
    picked = [frames[index * len(frames) // count] for index in range(count)]
    width, height = picked[0].size
    strip = Image.new("RGB", (width * count, height))
    for index, frame in enumerate(picked):
        strip.paste(frame, (index * width, 0))
    return strip


TRAIN, SAMPLE, WALK = TrainTechnique(), SampleTechnique(), WalkTechnique()
