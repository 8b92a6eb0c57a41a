"""CPPN: a seeded random MLP that maps each pixel's (x, y, r) and a latent z to a colour.

Without a target, the steps walk the latent z once around a loop, so the animation morphs the
pattern and ends where it began (the final image depends only on the seed and the shape
options). With a target image, the steps fit the network to it with Adam on random pixel batches.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bot.art.imagefiles import load_image_file
from bot.art.images import image_to_tensor, preview_image, tensor_to_image
from bot.art.technique import RunContext, RunResult, losses_as_floats, param, validate_fields

LATENT_DIM = 8
FIT_RESOLUTION = 256  # the target is fitted at most at this side; the result renders at full size
PIXELS_PER_BATCH = 8192
RENDER_CHUNK = 65536  # pixels per forward pass when rendering, to bound memory at large sizes
HIDDEN_GAIN = 2.5  # weight std * sqrt(fan_in): lower washes deep networks out to one flat colour
OUTPUT_GAIN = 5.0  # a steeper output layer uses more of the sigmoid's range: more contrast


@dataclass(frozen=True)
class CppnConfig:
    size: int = param(512, help="side of the square image in pixels", min=16, max=4096, limit="size")
    steps: int = param(120, help="animation frames to morph through, or fitting steps with --target",
                       min=1, max=10000, limit="steps")
    layers: int = param(8, help="hidden layers: more gives finer, busier patterns", min=1, max=16)
    width: int = param(32, help="units per hidden layer", min=3, max=256)
    zoom: float = param(1.0, help="how far the coordinates reach: larger zooms out", min=0.05, max=50.0)
    z_scale: float = param(1.0, help="how strongly the latent z shapes the pattern", min=0.0, max=10.0)
    colour: str = param("rgb", help="how the three outputs become a colour", choices=("rgb", "hsv", "grey"))
    target: str | None = param(None, help="image file to fit the network to (optional)", image=True)
    lr: float = param(0.01, help="Adam learning rate when fitting a target", min=1e-5, max=1.0)

    def __post_init__(self) -> None:
        validate_fields(self)


class Cppn(nn.Module):
    """An MLP whose hidden units are split between tanh, sin and gaussian activations."""

    def __init__(self, config: CppnConfig, generator: torch.Generator, device: torch.device):
        super().__init__()
        sizes = [3 + LATENT_DIM] + [config.width] * config.layers + [1 if config.colour == "grey" else 3]
        self.linears = nn.ModuleList(
            nn.Linear(n_in, n_out, device=device) for n_in, n_out in itertools.pairwise(sizes)
        )
        with torch.no_grad():  # a wide normal init: the default one gives smooth, near-flat images
            for linear in self.linears:
                fan_in = linear.weight.shape[1]
                gain = OUTPUT_GAIN if linear is self.linears[-1] else HIDDEN_GAIN
                linear.weight.copy_(torch.randn(linear.weight.shape, generator=generator, device=device))
                linear.weight.mul_(gain / math.sqrt(fan_in))
                linear.bias.copy_(torch.randn(linear.bias.shape, generator=generator, device=device) * 0.5)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        h = inputs  # [N, 3 + LATENT_DIM]
        for linear in self.linears[:-1]:
            h = linear(h)  # [N, width]
            a, b = h.shape[1] // 3, 2 * h.shape[1] // 3
            h = torch.cat([torch.tanh(h[:, :a]), torch.sin(h[:, a:b]), torch.exp(-h[:, b:].square())], dim=1)
        return torch.sigmoid(self.linears[-1](h))  # [N, 1 or 3] in 0..1


def coordinates(side: int, zoom: float, device: torch.device) -> torch.Tensor:
    """(x, y, r) for every pixel of a side x side grid, x and y in -zoom..zoom."""
    axis = torch.linspace(-zoom, zoom, side, device=device)
    y, x = torch.meshgrid(axis, axis, indexing="ij")  # [side, side] each
    return torch.stack([x, y, torch.sqrt(x * x + y * y)], dim=-1).view(-1, 3)  # [side*side, 3]


def to_rgb(outputs: torch.Tensor, colour: str) -> torch.Tensor:
    """[N, 1 or 3] network outputs in 0..1 -> [N, 3] RGB."""
    if colour == "grey":
        return outputs.expand(-1, 3)
    if colour == "hsv":
        hue, saturation, value = outputs.unbind(dim=1)  # [N] each
        k = (torch.tensor([5.0, 3.0, 1.0], device=outputs.device) + hue[:, None] * 6) % 6  # [N, 3]
        return value[:, None] - value[:, None] * saturation[:, None] * (torch.minimum(k, 4 - k).clamp(0, 1))
    return outputs


class CppnTechnique:
    name = "cppn"
    config_type = CppnConfig

    def render(self, net: Cppn, z: torch.Tensor, side: int, config: CppnConfig) -> torch.Tensor:
        """The network's image at side x side as [1, 3, side, side], rendered in chunks without grad."""
        coords = coordinates(side, config.zoom, z.device)  # [side*side, 3]
        with torch.no_grad():
            chunks = [
                to_rgb(net(torch.cat([chunk, z.expand(len(chunk), -1)], dim=1)), config.colour)
                for chunk in coords.split(RENDER_CHUNK)
            ]
        return torch.cat(chunks).view(side, side, 3).permute(2, 0, 1).unsqueeze(0)

    def run(self, config: CppnConfig, seed: int, ctx: RunContext) -> RunResult:
        started = time.perf_counter()
        device = ctx.device
        generator = torch.Generator(device=device).manual_seed(seed)
        net = Cppn(config, generator, device)
        z_start = torch.randn(1, LATENT_DIM, generator=generator, device=device) * config.z_scale  # [1, Z]
        z_turn = torch.randn(1, LATENT_DIM, generator=generator, device=device) * config.z_scale  # [1, Z]
        preview_side = min(config.size, 256)

        if config.target is not None:
            fit_side = min(config.size, FIT_RESOLUTION)
            target = image_to_tensor(load_image_file(config.target), fit_side, device)  # [1, 3, S, S]
            target_pixels = target[0].permute(1, 2, 0).reshape(-1, 3)  # [S*S, 3]
            fit_inputs = torch.cat(
                [coordinates(fit_side, config.zoom, device), z_start.expand(fit_side * fit_side, -1)], dim=1
            )  # [S*S, 3 + Z]
            optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)

        frames, losses = [], []
        z, steps_done, cancelled = z_start, 0, False
        for step in range(1, config.steps + 1):
            if ctx.should_cancel():
                cancelled = True
                break
            metrics = {}
            if config.target is None:
                angle = 2 * math.pi * step / config.steps  # one loop: the last frame is the first pattern
                z = z_start * math.cos(angle) + z_turn * math.sin(angle)  # [1, Z]
            else:
                pixels = torch.randint(len(fit_inputs), (PIXELS_PER_BATCH,), generator=generator,
                                       device=device)  # [N] random pixel indices
                loss = F.mse_loss(to_rgb(net(fit_inputs[pixels]), config.colour), target_pixels[pixels])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(loss.detach())
            steps_done = step
            if step % ctx.progress_every == 0 or step == config.steps:
                preview = preview_image(self.render(net, z, preview_side, config))
                frames.append(preview)
                if losses:
                    metrics = {"loss": float(losses[-1])}
                ctx.on_progress(step, config.steps, preview, metrics)

        image = tensor_to_image(self.render(net, z, config.size, config))
        return RunResult(
            image=image,
            frames=frames,
            losses=losses_as_floats(losses),
            seconds=time.perf_counter() - started,
            steps_done=steps_done,
            cancelled=cancelled,
        )


TECHNIQUE = CppnTechnique()
