"""One CLIP-guided image being optimised, and the step that moves many such images at once.

A `GuidedImage` holds everything one image needs between steps: its parameterisation, its Adam
optimizer, its random stream (cutouts, augmentations) and its losses. `step_together` runs one step
of several of them with a single CLIP `encode_image` call over all their cutouts and one backward
pass. That is how the worker lets several people's `imagine` jobs (and the variants of a `/compare`)
share the GPU: a small model with 32 cutouts leaves most of a modern GPU idle, one large batch does not.

Running an image alone is `step_together([image])`, the very same code, so a job gives the same
image batched or alone, up to the float rounding of a larger matrix multiply.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from bot.art.cutouts import make_cutouts
from bot.art.losses import total_variation, weighted_prompt_loss
from bot.art.models import ClipModel
from bot.art.parameterizations import make_parameterization
from bot.art.technique import RunContext, RunResult, SteppedJob

# Rough activation memory one cutout keeps for the backward pass, per transformer layer and token:
# this many floats per unit of width (attention and MLP inputs, outputs and norms) ...
SAVED_FLOATS_PER_WIDTH = 24
# ... plus the attention probabilities, per head and token pair, a few times over.
SAVED_FLOATS_PER_ATTENTION = 3
# An image's own memory as a multiple of its pixels: parameters, gradients, Adam's two moments,
# the rendered image, the mip atlas and their gradients.
IMAGE_BUFFERS = 16


class Goal(NamedTuple):
    """What an image is pulled towards: unit CLIP embeddings [P, D] and their weights [P]."""

    embeds: torch.Tensor
    weights: torch.Tensor


@dataclass(frozen=True)
class GuideConfig:
    """How one image is optimised (the subset of a technique's config that a step uses)."""

    steps: int
    size: int
    param: str
    cutn: int
    lr: float
    tv_weight: float


class GuidedImage:
    """One image under optimisation; `step_together` moves it a step at a time."""

    def __init__(self, config: GuideConfig, goal: Goal, seed: int, device: torch.device,
                 init: torch.Tensor | None = None, init_strength: float = 0.5) -> None:
        self.config = config
        self.goal = goal
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.parameterization = make_parameterization(
            config.param, config.size, device, self.generator, init=init, init_strength=init_strength
        )
        # fused: one kernel for the whole update instead of a dozen passes per parameter (CPU and GPU alike)
        self.optimizer = torch.optim.Adam(self.parameterization.parameters(), lr=config.lr, fused=True)
        self.losses: list[torch.Tensor] = []  # 0-d device tensors, one per step, read back once at the end

    @property
    def step(self) -> int:
        return len(self.losses)

    @property
    def done(self) -> bool:
        return self.step >= self.config.steps

    def render(self) -> torch.Tensor:
        return self.parameterization()  # [1, 3, S, S] in 0..1

    @torch.no_grad()
    def current(self) -> torch.Tensor:
        """The image as it is now, without gradients: [1, 3, S, S]."""
        return self.parameterization()

    def cutouts(self, image: torch.Tensor, clip: ClipModel) -> torch.Tensor:
        """This step's random cutouts of `image`, normalised for CLIP: [cutn, 3, C, C]."""
        return make_cutouts(image, self.config.cutn, clip.image_size, self.generator, mean=clip.mean, std=clip.std)

    def loss(self, image: torch.Tensor, image_embeds: torch.Tensor) -> torch.Tensor:
        """Distance of the cutouts' unit embeddings [cutn, D] to the goal, plus smoothness: 0-d."""
        loss = weighted_prompt_loss(image_embeds, self.goal.embeds, self.goal.weights)
        return loss + self.config.tv_weight * total_variation(image)


def clip_autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast for CLIP on GPUs that have it; fp32 elsewhere (fp16 would need loss scaling)."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def step_together(images: Sequence[GuidedImage], clip: ClipModel, device: torch.device) -> None:
    """One optimisation step of every image: one CLIP call over all their cutouts, one backward pass.

    Summing the losses before the backward pass is exact: the images share no parameter, so each
    one's gradient is the gradient of its own loss. If the step runs out of memory, every image's
    random stream is put back as it was and the error is raised: no image has moved, and the step
    can be tried again without some of them.
    """
    states = [image.generator.get_state() for image in images]
    try:
        pictures = [image.render() for image in images]  # each [1, 3, S_i, S_i]
        cutouts = [image.cutouts(picture, clip) for image, picture in zip(images, pictures, strict=True)]
        with clip_autocast(device):
            embeds = clip.model.encode_image(torch.cat(cutouts))  # [sum of cutn, D]
        embeds = F.normalize(embeds.float(), dim=-1).split([len(c) for c in cutouts])
        losses = [image.loss(picture, embed) for image, picture, embed in zip(images, pictures, embeds, strict=True)]
        for image in images:
            image.optimizer.zero_grad(set_to_none=True)
        torch.stack(losses).sum().backward()
    except torch.OutOfMemoryError:
        for image, state in zip(images, states, strict=True):
            image.generator.set_state(state)
            image.optimizer.zero_grad(set_to_none=True)
        raise
    for image, loss in zip(images, losses, strict=True):
        image.optimizer.step()
        image.losses.append(loss.detach())


def bytes_per_cutout(clip: ClipModel) -> int:
    """A rough figure for the memory one cutout takes through CLIP's image tower and back.

    From the vision transformer's shape where it has one (layers, tokens, width, heads); otherwise
    a multiple of the tower's size. It only has to rank jobs sensibly for admission into a batch.
    """
    visual = clip.model.visual
    transformer = getattr(visual, "transformer", None)
    grid = getattr(visual, "grid_size", None)
    if transformer is None or grid is None:
        return 4 * sum(parameter.numel() for parameter in visual.parameters())
    tokens = grid[0] * grid[1] + 1
    heads = transformer.resblocks[0].attn.num_heads
    per_layer = tokens * (SAVED_FLOATS_PER_WIDTH * transformer.width + SAVED_FLOATS_PER_ATTENTION * heads * tokens)
    return 4 * transformer.layers * per_layer


def estimated_bytes(config: GuideConfig, clip: ClipModel) -> int:
    """About how much device memory one step of an image with this config needs beside the model."""
    return config.cutn * bytes_per_cutout(clip) + IMAGE_BUFFERS * 4 * 3 * config.size**2


def run_alone(job: SteppedJob, ctx: RunContext) -> RunResult:
    """Steps one job to its end (or until it is cancelled) with no other job beside it."""
    clip = ctx.models.clip()
    while not job.done:
        if ctx.should_cancel():
            return job.result(cancelled=True)
        step_together(job.images, clip, ctx.device)
        job.after_step()
    return job.result(cancelled=False)
