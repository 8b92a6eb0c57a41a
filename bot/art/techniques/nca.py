"""Growing neural cellular automata (Mordvintsev et al., Distill 2020).

Every cell holds 16 channels: RGBA and 12 hidden ones. Each update, a cell perceives its
neighbourhood through fixed Sobel filters, a tiny per-cell network (1x1 convolutions) proposes a
change, and a random half of the cells apply it. Cells whose 3x3 neighbourhood has no alpha above
0.1 are dead and reset to zero. Training grows the target from one seed cell; a sample pool of
earlier states teaches the pattern to persist rather than only to appear.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from bot.art.imagefiles import load_image_file
from bot.art.images import tensor_to_image
from bot.art.technique import RunContext, RunResult, losses_as_floats, param, validate_fields

CHANNELS = 16  # RGBA + 12 hidden
HIDDEN = 128
ALIVE_THRESHOLD = 0.1
PREVIEW_SIDE = 256
# Training keeps every automaton update of the rollout for the backward pass: about 1.3 KB of
# activations per cell update (measured in fp32). The defaults (8 states x 48^2 cells x up to 72
# updates) hold ~1.7 GB; this cap allows 4x that (~7 GB), so an 8 GB GPU or a CPU box copes.
BYTES_PER_CELL_UPDATE = 1300
MAX_CELL_UPDATES = 4 * 8 * 48**2 * 72


@dataclass(frozen=True)
class NcaConfig:
    target: str = param(None, help="image to grow (transparent PNG or emoji works best)", image=True)
    steps: int = param(800, help="training steps", min=1, max=20000, limit="steps")
    size: int = param(512, help="side of the result image in pixels", min=16, max=4096, limit="size")
    grid: int = param(48, help="cells per side; the target is drawn inside with a margin", min=12, max=128)
    rollout: int = param(48, help="automaton updates per training step (randomly up to 1.5x)", min=2, max=256)
    pool_size: int = param(256, help="states kept in the sample pool", min=1, max=2048)
    batch_size: int = param(8, help="states trained on per step", min=1, max=64)
    fire_rate: float = param(0.5, help="chance that a cell updates on each automaton step", min=0.05, max=1.0)
    lr: float = param(2e-3, help="Adam learning rate", min=1e-5, max=0.1)
    growth_frames: int = param(48, help="frames in the growth animation", min=2, max=300)

    def __post_init__(self) -> None:
        validate_fields(self)
        if not self.target:
            raise ValueError("nca needs an image to grow: give --target (a small PNG, e.g. an emoji).")
        if self.batch_size > self.pool_size:
            raise ValueError(f"batch-size ({self.batch_size}) cannot exceed pool-size ({self.pool_size}).")
        cell_updates = self.batch_size * self.grid**2 * self.longest_rollout
        if cell_updates > MAX_CELL_UPDATES:
            gigabytes = cell_updates * BYTES_PER_CELL_UPDATE / 1e9
            raise ValueError(
                f"batch-size {self.batch_size} x grid {self.grid}^2 x rollout up to {self.longest_rollout} "
                f"needs about {gigabytes:.0f} GB of memory to train (the limit is "
                f"{MAX_CELL_UPDATES * BYTES_PER_CELL_UPDATE / 1e9:.0f} GB); lower --batch-size, --grid or --rollout."
            )

    @property
    def longest_rollout(self) -> int:
        """Each training step runs `rollout` to 1.5x `rollout` automaton updates."""
        return self.rollout * 3 // 2


class GrowingCA(nn.Module):
    def __init__(self, fire_rate: float, generator: torch.Generator, device: torch.device):
        super().__init__()
        self.fire_rate = fire_rate
        sobel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=device) / 8
        identity = torch.zeros(3, 3, device=device)
        identity[1, 1] = 1.0
        kernels = torch.stack([identity, sobel_x, sobel_x.T])  # [3, 3, 3]
        self.register_buffer("kernels", kernels.repeat(CHANNELS, 1, 1).unsqueeze(1))  # [3C, 1, 3, 3]
        self.hidden = nn.Conv2d(3 * CHANNELS, HIDDEN, 1, device=device)
        self.out = nn.Conv2d(HIDDEN, CHANNELS, 1, bias=False, device=device)
        with torch.no_grad():  # seeded init (not the global RNG); the update starts as "do nothing"
            bound = 1 / math.sqrt(3 * CHANNELS)
            self.hidden.weight.copy_((torch.rand(self.hidden.weight.shape, generator=generator, device=device)
                                      * 2 - 1) * bound)
            self.hidden.bias.copy_((torch.rand(HIDDEN, generator=generator, device=device) * 2 - 1) * bound)
            self.out.weight.zero_()

    def forward(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        alive_before = alive(x)  # [B, 1, G, G]
        perception = F.conv2d(x, self.kernels, padding=1, groups=CHANNELS)  # [B, 3C, G, G]
        dx = self.out(F.relu(self.hidden(perception)))  # [B, C, G, G]
        fire = torch.rand(x[:, :1].shape, generator=generator, device=x.device) < self.fire_rate  # [B,1,G,G]
        x = x + dx * fire
        return x * (alive_before & alive(x))


def alive(x: torch.Tensor) -> torch.Tensor:
    """Cells with some alpha above the threshold in their 3x3 neighbourhood: [B, C, G, G] -> [B, 1, G, G]."""
    return F.max_pool2d(x[:, 3:4], kernel_size=3, stride=1, padding=1) > ALIVE_THRESHOLD


def load_target(path: str, grid: int, device: torch.device) -> torch.Tensor:
    """The target as premultiplied RGBA [1, 4, grid, grid], drawn in the middle with a margin to grow into."""
    margin = max(2, grid // 8)
    side = grid - 2 * margin
    image = load_image_file(path).convert("RGBA").resize((side, side), Image.Resampling.LANCZOS)
    rgba = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(side, side, 4)
    rgba = rgba.permute(2, 0, 1).float().div(255).to(device)  # [4, side, side]
    rgba = torch.cat([rgba[:3] * rgba[3:], rgba[3:]])  # premultiplied alpha
    return F.pad(rgba, (margin, margin, margin, margin)).unsqueeze(0)  # [1, 4, G, G]


def to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Premultiplied RGBA in the first four channels over white: [B, C, G, G] -> [B, 3, G, G]."""
    return (1 - x[:, 3:4].clamp(0, 1) + x[:, :3]).clamp(0, 1)


def upscaled(cells: torch.Tensor, side: int) -> Image.Image:
    """One state [1, C, G, G] as an RGB image with crisp, nearest-neighbour cells."""
    return tensor_to_image(to_rgb(cells)).resize((side, side), Image.Resampling.NEAREST)


class NcaTechnique:
    name = "nca"
    config_type = NcaConfig

    def run(self, config: NcaConfig, seed: int, ctx: RunContext) -> RunResult:
        started = time.perf_counter()
        device = ctx.device
        host_rng = torch.Generator().manual_seed(seed)  # rollout lengths: loop counts, needed on the host
        device_rng = torch.Generator(device=device).manual_seed(seed)  # pool batches, per-cell update masks
        target = load_target(config.target, config.grid, device)  # [1, 4, G, G]
        seed_state = torch.zeros(1, CHANNELS, config.grid, config.grid, device=device)  # [1, C, G, G]
        seed_state[:, 3:, config.grid // 2, config.grid // 2] = 1.0  # one live cell; hidden channels on
        ca = GrowingCA(config.fire_rate, device_rng, device)
        optimizer = torch.optim.Adam(ca.parameters(), lr=config.lr)
        pool = seed_state.repeat(config.pool_size, 1, 1, 1)  # [P, C, G, G]
        preview_side = config.grid * max(1, PREVIEW_SIDE // config.grid)

        def sample_losses(x: torch.Tensor) -> torch.Tensor:
            return (x[:, :4] - target).square().mean(dim=(1, 2, 3))  # [B]

        losses, steps_done, cancelled = [], 0, False
        for step in range(1, config.steps + 1):
            if ctx.should_cancel():
                cancelled = True
                break
            batch = torch.randperm(config.pool_size, generator=device_rng, device=device)[: config.batch_size]
            x = pool[batch]  # [B, C, G, G], a copy
            with torch.no_grad():  # the worst sample restarts from the seed; the index stays on the device
                worst = sample_losses(x).argmax()  # 0-d
                is_worst = torch.arange(config.batch_size, device=device) == worst  # [B]
                x = torch.where(is_worst[:, None, None, None], seed_state, x)
            iterations = int(torch.randint(config.rollout, config.longest_rollout + 1, (1,), generator=host_rng))
            for _ in range(iterations):
                x = ca(x, device_rng)
            loss = sample_losses(x).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            with torch.no_grad():
                for weight in ca.parameters():  # per-tensor gradient normalisation keeps long rollouts stable
                    weight.grad.div_(weight.grad.norm() + 1e-8)
            optimizer.step()
            pool[batch] = x.detach()
            losses.append(loss.detach())
            steps_done = step
            if step % ctx.progress_every == 0 or step == config.steps:
                preview = upscaled(x[:1].detach(), preview_side)
                ctx.on_progress(step, config.steps, preview, {"loss": float(losses[-1])})

        # The animation: the trained automaton growing from the seed, run past the training horizon.
        growth_length = 2 * config.rollout
        last_frame = config.growth_frames - 1
        frame_at = {round(i * growth_length / last_frame) for i in range(config.growth_frames)}
        frames, x = [], seed_state
        with torch.no_grad():
            for iteration in range(growth_length + 1):
                if iteration in frame_at:
                    frames.append(upscaled(x, preview_side))
                if iteration < growth_length:
                    x = ca(x, device_rng)
        return RunResult(
            image=upscaled(x, config.size),
            frames=frames,
            losses=losses_as_floats(losses),
            seconds=time.perf_counter() - started,
            steps_done=steps_done,
            cancelled=cancelled,
        )


TECHNIQUE = NcaTechnique()
