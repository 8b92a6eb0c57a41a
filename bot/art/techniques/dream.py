"""Deep dream on VGG16: gradient ascent on one layer's activation energy, octave by octave.

The image is processed from a small copy up to full size; at each octave the detail dreamed so
far is carried up and added to the resized original. A random roll (jitter) before each step
keeps the network from settling into a fixed grid of artefacts. Steps are normalised by the mean
absolute gradient, so `lr` is roughly the change per pixel per step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bot.art.imagefiles import load_image_file
from bot.art.images import image_to_tensor, preview_image, tensor_to_image
from bot.art.technique import RunContext, RunResult, losses_as_floats, param, validate_fields
from bot.art.vgg import MIN_SIDE, RANDOM_WEIGHTS_NOTE, fitted_size, vgg_activations

VGG16_LAYERS = (
    "relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1", "relu3_2", "relu3_3",
    "relu4_1", "relu4_2", "relu4_3", "relu5_1", "relu5_2", "relu5_3",
)
PREVIEW_SIDE = 256


@dataclass(frozen=True)
class DreamConfig:
    image: str = param(None, help="image file to dream on", image=True)
    layer: str = param("relu4_3", help="VGG16 layer to amplify: early layers give textures, deep ones shapes",
                       choices=VGG16_LAYERS)
    octaves: int = param(4, help="scales to dream at, smallest first", min=1, max=8)
    octave_scale: float = param(1.4, help="size ratio between octaves", min=1.05, max=2.5)
    steps: int = param(40, help="ascent steps in all, shared by the octaves", min=1, max=10000, limit="steps")
    size: int = param(512, help="longest side of the result in pixels", min=MIN_SIDE, max=4096, limit="size")
    lr: float = param(0.01, help="step size: mean change per pixel per step (0..1 scale)", min=1e-4, max=0.5)
    jitter: int = param(16, help="largest random shift in pixels before each step", min=0, max=128)

    def __post_init__(self) -> None:
        validate_fields(self)
        if not self.image:
            raise ValueError("dream needs an image to dream on: give --image.")


def octave_sizes(height: int, width: int, octaves: int, scale: float) -> list[tuple[int, int]]:
    """(height, width) per octave, smallest first, skipping those too small for VGG."""
    sizes = [(round(height / scale**i), round(width / scale**i)) for i in reversed(range(octaves))]
    return [(h, w) for h, w in sizes if min(h, w) >= MIN_SIDE] or [(height, width)]


def steps_per_octave(total: int, octaves: int) -> list[int]:
    """`total` steps spread over the octaves, the remainder going to the largest (last) ones."""
    base, extra = divmod(total, octaves)
    return [base + (1 if i >= octaves - extra else 0) for i in range(octaves)]


class DreamTechnique:
    name = "dream"
    config_type = DreamConfig

    def run(self, config: DreamConfig, seed: int, ctx: RunContext) -> RunResult:
        started = time.perf_counter()
        device = ctx.device
        host_rng = torch.Generator().manual_seed(seed)  # jitter offsets, drawn on the host: no device sync
        vgg = ctx.models.vgg_features()
        source = load_image_file(config.image)
        width, height = fitted_size(*source.size, config.size)
        original = image_to_tensor(source, (width, height), device)  # [1, 3, H, W]
        preview_scale = min(1.0, PREVIEW_SIDE / max(width, height))
        preview_size = (max(1, round(height * preview_scale)), max(1, round(width * preview_scale)))

        sizes = octave_sizes(height, width, config.octaves, config.octave_scale)
        detail = torch.zeros(1, 3, *sizes[0], device=device)  # [1, 3, h0, w0]: what dreaming added so far
        image = original
        frames, losses, step, cancelled = [], [], 0, False
        for octave_size, octave_steps in zip(sizes, steps_per_octave(config.steps, len(sizes)), strict=True):
            octave_base = F.interpolate(original, octave_size, mode="bilinear", antialias=True)  # [1,3,h,w]
            image = (octave_base + F.interpolate(detail, octave_size, mode="bilinear")).clamp(0, 1)
            for _ in range(octave_steps):
                if ctx.should_cancel():
                    cancelled = True
                    break
                dy, dx = torch.randint(-config.jitter, config.jitter + 1, (2,), generator=host_rng).tolist()
                shifted = torch.roll(image, (dy, dx), dims=(2, 3)).requires_grad_(True)
                activation = vgg_activations(vgg, shifted, [config.layer])[config.layer]
                loss = -activation.square().mean()  # descending this ascends the activation energy
                (grad,) = torch.autograd.grad(loss, shifted)
                grad = torch.roll(grad, (-dy, -dx), dims=(2, 3))  # [1, 3, h, w]
                image = (image - config.lr * grad / (grad.abs().mean() + 1e-8)).clamp(0, 1).detach()
                losses.append(loss.detach())
                step += 1
                if step % ctx.progress_every == 0 or step == config.steps:
                    shrunk = F.interpolate(image, preview_size, mode="bilinear", antialias=True)
                    preview = preview_image(shrunk)
                    frames.append(preview)
                    ctx.on_progress(step, config.steps, preview, {"loss": float(losses[-1])})
            if cancelled:
                break
            detail = image - octave_base

        if image.shape[-2:] != (height, width):  # cancelled before the last octave
            image = F.interpolate(image, (height, width), mode="bilinear")
        return RunResult(
            image=tensor_to_image(image),
            frames=frames,
            losses=losses_as_floats(losses),
            seconds=time.perf_counter() - started,
            steps_done=step,
            cancelled=cancelled,
            notes=[RANDOM_WEIGHTS_NOTE] if vgg.random_weights else [],
        )


TECHNIQUE = DreamTechnique()
