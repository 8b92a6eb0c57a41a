"""A community GAN: a small DCGAN (Radford et al., 2015) trained on a server's own images.

The generator turns a latent vector of `latent_dim` normal numbers into an image; the
discriminator scores an image as real (from the server's set) or made. They train in turns: the
discriminator learns to tell the two apart, then the generator learns to fool it. A server's set
is small (tens to hundreds of entries), so random mirroring doubles it in effect.

A run trains in chunks between other people's jobs: `GanTrainer.train_steps(n, images)` runs n
steps, and a checkpoint (`save` / `GanTrainer.load`) carries everything the next chunk needs to
go on exactly as if it had never stopped, its random stream included. Then `sample_grid` (the
same fixed latents every chunk, so the grid visibly learns), `sample` (at a larger size too) and
`latent_walk` show what it learnt. Pure torch and Pillow: no discord, no database.

    config = GanConfig(image_size=64)
    images = load_dataset(paths, config.image_size, device)     # [N, 3, 64, 64] in -1..1
    trainer = GanTrainer(config, seed=7, device=device)
    losses = trainer.train_steps(200, images)
    trainer.save("run.pt"); trainer = GanTrainer.load("run.pt", device)
    sample_grid(trainer).save("grid.png")
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision.utils import make_grid

from bot.art.charts import curves_chart
from bot.art.imagefiles import load_image_file
from bot.art.images import tensor_to_image
from bot.art.technique import param, validate_fields

IMAGE_SIZES = (32, 64, 128)
FIRST_SIDE = 4  # the generator's first layer makes a 4x4 map from each latent; every block after it doubles it
ADAM_BETA2 = 0.999
CHECKPOINT_FORMAT = 1
RENDER_BATCH = 32  # latents through the generator at once when rendering many images


@dataclass(frozen=True)
class GanConfig:
    image_size: int = param(64, help="side of the training images and samples in pixels: 32, 64 or 128")
    latent_dim: int = param(100, help="normal numbers in one latent vector", min=1, max=1024)
    generator_width: int = param(64, help="channels of the generator's last block; each earlier block has twice",
                                 min=1, max=256)
    discriminator_width: int = param(64, help="channels of the discriminator's first block; each later one has "
                                     "twice", min=1, max=256)
    lr: float = param(2e-4, help="Adam learning rate of both networks", min=1e-6, max=1e-2)
    beta1: float = param(0.5, help="Adam beta1 (DCGAN: 0.5, not 0.9, keeps the two-player game steadier)",
                         min=0.0, max=0.999)
    batch_size: int = param(64, help="real images (and as many made ones) per step", min=2, max=1024)
    mirror: bool = param(True, help="flip each real image left-right with chance 1/2 (doubles a small set)")

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.image_size not in IMAGE_SIZES:
            raise ValueError(f"image-size must be one of {', '.join(map(str, IMAGE_SIZES))} "
                             f"(you gave {self.image_size}).")

    @property
    def blocks(self) -> int:
        """Up (or down) blocks between the 4x4 map and the image: 3 at 32 px, 4 at 64, 5 at 128."""
        return int(math.log2(self.image_size // FIRST_SIDE))


def dcgan_init_(module: nn.Module, seed: int) -> None:
    """DCGAN's initial weights: convolutions normal(0, 0.02), batch norm scales normal(1, 0.02), shifts 0.

    Drawn on the CPU from `seed`, so a seed gives the same starting network on every device.
    """
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=rng) * 0.02)
            elif isinstance(layer, nn.BatchNorm2d):
                layer.weight.copy_(1 + torch.randn(layer.weight.shape, generator=rng) * 0.02)
                layer.bias.zero_()


class Generator(nn.Module):
    """Latents [B, Z, k, k] -> images [B, 3, (k + 3) * S / 4, same] in -1..1 (S: config.image_size).

    A 4x4 transposed convolution turns each latent into a 4x4 map of width * 2^(blocks-1) channels;
    each block then doubles the side and halves the channels, the last one to RGB. It is all
    convolutions: a k x k grid of latents makes a (k + 3) x (k + 3) first map and so a larger image,
    stitched from overlapping neighbourhoods that each look like a training image.
    """

    def __init__(self, config: GanConfig, seed: int = 0):
        super().__init__()
        self.image_size, self.latent_dim = config.image_size, config.latent_dim
        channels = [config.generator_width * 2**i for i in reversed(range(config.blocks))]  # [8w, 4w, 2w, w] at 64
        with torch.random.fork_rng(devices=[]):  # default init draws from the global RNG: leave it as it was
            layers: list[nn.Module] = [
                nn.ConvTranspose2d(config.latent_dim, channels[0], FIRST_SIDE, 1, 0, bias=False),  # [B, 8w, 4, 4]
                nn.BatchNorm2d(channels[0]), nn.ReLU(inplace=True),
            ]
            for wide, narrow in itertools.pairwise(channels):  # side x2, channels /2
                layers += [nn.ConvTranspose2d(wide, narrow, 4, 2, 1, bias=False), nn.BatchNorm2d(narrow),
                           nn.ReLU(inplace=True)]
            layers += [nn.ConvTranspose2d(channels[-1], 3, 4, 2, 1, bias=False), nn.Tanh()]  # [B, 3, S, S]
            self.net = nn.Sequential(*layers)
        dcgan_init_(self, seed)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.net(latents)


class Discriminator(nn.Module):
    """Images [B, 3, S, S] -> one logit each [B]: above 0 says "real".

    Strided convolutions halve the side and double the channels down to a 4x4 map, which a last
    4x4 convolution reads as one number. No batch norm on the input layer (as in DCGAN).
    """

    def __init__(self, config: GanConfig, seed: int = 0):
        super().__init__()
        channels = [config.discriminator_width * 2**i for i in range(config.blocks)]  # [w, 2w, 4w, 8w] at 64
        with torch.random.fork_rng(devices=[]):
            layers: list[nn.Module] = [
                nn.Conv2d(3, channels[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),  # [B, w, S/2, S/2]
            ]
            for narrow, wide in itertools.pairwise(channels):  # side /2, channels x2
                layers += [nn.Conv2d(narrow, wide, 4, 2, 1, bias=False), nn.BatchNorm2d(wide),
                           nn.LeakyReLU(0.2, inplace=True)]
            layers += [nn.Conv2d(channels[-1], 1, FIRST_SIDE, 1, 0, bias=False)]  # [B, 1, 1, 1]
            self.net = nn.Sequential(*layers)
        dcgan_init_(self, seed)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images).flatten()  # [B]


class StepLosses(NamedTuple):
    """One loss per step of each network, oldest first."""

    discriminator: list[float]
    generator: list[float]


def random_latents(n: int, latent_dim: int, seed: int, side: int = 1) -> torch.Tensor:
    """n latents [n, Z, side, side], drawn on the CPU from `seed`: a seed means the same latents,
    so the same images, on every device."""
    return torch.randn(n, latent_dim, side, side, generator=torch.Generator().manual_seed(seed))


class GanTrainer:
    """A generator, a discriminator, their Adam optimizers and the run's own random stream.

    One seed makes the whole run: the fixed sample latents (`random_latents(samples, Z, seed)`, so
    `sample(trainer.generator, samples, seed)` shows the grid's images), the two networks' initial
    weights (seed + 1, seed + 2) and the training stream (seed + 3: batches, mirror flips, latents),
    a torch.Generator on the device. Nothing draws from torch's global RNG.
    """

    def __init__(self, config: GanConfig, seed: int, device: torch.device | str, samples: int = 16):
        self.config, self.seed, self.device = config, seed, torch.device(device)
        self.sample_latents = random_latents(samples, config.latent_dim, seed).to(self.device)  # [samples, Z, 1, 1]
        self.generator = Generator(config, seed + 1).to(self.device)
        self.discriminator = Discriminator(config, seed + 2).to(self.device)
        betas = (config.beta1, ADAM_BETA2)
        self.generator_optimizer = torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas)
        self.discriminator_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=betas)
        self.rng = torch.Generator(self.device).manual_seed(seed + 3)
        self.step = 0
        self.history = StepLosses([], [])

    def draw_batch(self, images: torch.Tensor) -> torch.Tensor:
        """A batch of real images [B, 3, S, S] from `images` [N, 3, S, S], with replacement (no epoch
        state to checkpoint, and a set smaller than a batch still fills one), each mirrored with
        chance 1/2 when config.mirror."""
        batch_size = self.config.batch_size
        index = torch.randint(len(images), (batch_size,), generator=self.rng, device=self.device)  # [B]
        batch = images[index]  # [B, 3, S, S]
        if self.config.mirror:
            flip = torch.rand(batch_size, generator=self.rng, device=self.device) < 0.5  # [B]
            batch = torch.where(flip[:, None, None, None], batch.flip(3), batch)
        return batch

    def train_steps(self, n: int, images: torch.Tensor,
                    should_cancel: Callable[[], bool] = lambda: False) -> StepLosses:
        """Run n steps (fewer if `should_cancel()` turns true between two) on `images` [N, 3, S, S] in
        -1..1 on the device; return those steps' losses, also appended to `self.history`.

        A step: the discriminator learns real -> 1 and made -> 0 (binary cross-entropy on logits),
        then the generator learns to make the discriminator say 1 for its images. That is the
        "non-saturating" generator loss: -log D(G(z)) rather than log(1 - D(G(z))), whose gradient
        vanishes early on, when the discriminator easily wins.
        """
        self._check_images(images)
        d_losses, g_losses = [], []  # 0-d tensors, left on the device until the end: one host sync
        for _ in range(n):
            if should_cancel():
                break
            real = self.draw_batch(images)  # [B, 3, S, S]
            latents = torch.randn(len(real), self.config.latent_dim, 1, 1, generator=self.rng,
                                  device=self.device)  # [B, Z, 1, 1]
            made = self.generator(latents)  # [B, 3, S, S]

            real_logits = self.discriminator(real)  # [B]
            made_logits = self.discriminator(made.detach())  # [B]; detached: this update must not reach G
            d_loss = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                      + F.binary_cross_entropy_with_logits(made_logits, torch.zeros_like(made_logits)))
            self.discriminator_optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            self.discriminator_optimizer.step()

            self.discriminator.requires_grad_(False)  # G's update needs gradients through D, not D's own
            fooled_logits = self.discriminator(made)  # [B], by the discriminator just updated
            g_loss = F.binary_cross_entropy_with_logits(fooled_logits, torch.ones_like(fooled_logits))
            self.generator_optimizer.zero_grad(set_to_none=True)
            g_loss.backward()
            self.generator_optimizer.step()
            self.discriminator.requires_grad_(True)

            d_losses.append(d_loss.detach())
            g_losses.append(g_loss.detach())
            self.step += 1
        losses = StepLosses([], [])
        if d_losses:
            losses = StepLosses(*torch.stack([torch.stack(d_losses), torch.stack(g_losses)]).tolist())  # [2, n]
        self.history.discriminator.extend(losses.discriminator)
        self.history.generator.extend(losses.generator)
        return losses

    def _check_images(self, images: torch.Tensor) -> None:
        size = self.config.image_size
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, size, size):
            raise ValueError(f"training images must be [N, 3, {size}, {size}] (from load_dataset), "
                             f"not {list(images.shape)}")
        if len(images) == 0:
            raise ValueError("there are no training images")
        if images.device.type != self.device.type:
            raise ValueError(f"the training images are on {images.device}, the networks on {self.device}")

    def state_dict(self) -> dict:
        """Everything the run needs to go on exactly where it stopped.

        Only tensors, dicts, lists, strings and numbers, so that `torch.load(..., weights_only=True)`
        reads it: loading a checkpoint cannot run code. Like nn.Module.state_dict, the tensors are
        the live ones: save or copy the dict before training on.
        """
        return {
            "format": CHECKPOINT_FORMAT,
            "config": dataclasses.asdict(self.config),
            "seed": self.seed,
            "step": self.step,
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "generator_optimizer": self.generator_optimizer.state_dict(),
            "discriminator_optimizer": self.discriminator_optimizer.state_dict(),
            "rng_device": self.device.type,
            "rng_state": self.rng.get_state(),  # a CPU byte tensor, for a CUDA generator too
            "sample_latents": self.sample_latents.cpu(),
            "losses": {"discriminator": list(self.history.discriminator),
                       "generator": list(self.history.generator)},
        }

    def load_state_dict(self, state: dict) -> None:
        """Take over a run saved by `state_dict` (from a trainer built with the same config).

        The random stream goes on exactly where it stopped on the same kind of device. A CPU stream
        cannot continue on CUDA or back (the generators differ), so there it restarts from the seed
        and the step; exact continuation across device kinds is out of reach anyway (other kernels).
        """
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"not a GAN checkpoint of format {CHECKPOINT_FORMAT} (found {state.get('format')!r})")
        saved_config = GanConfig(**state["config"])
        if saved_config != self.config:
            raise ValueError(f"the checkpoint was trained with {saved_config}, this trainer has {self.config}")
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.generator_optimizer.load_state_dict(state["generator_optimizer"])
        self.discriminator_optimizer.load_state_dict(state["discriminator_optimizer"])
        self.seed, self.step = state["seed"], state["step"]
        if state["rng_device"] == self.device.type:
            self.rng.set_state(state["rng_state"].cpu())
        else:
            self.rng.manual_seed(self.seed + 3 + self.step)
        self.sample_latents = state["sample_latents"].to(self.device)
        self.history = StepLosses(list(state["losses"]["discriminator"]), list(state["losses"]["generator"]))

    def save(self, path: str | Path) -> None:
        """Write the checkpoint atomically: a crash mid-write leaves the previous one whole."""
        path = Path(path)
        partial = path.with_name(path.name + ".partial")
        torch.save(self.state_dict(), partial)
        os.replace(partial, path)

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str) -> GanTrainer:
        """A trainer that goes on from the checkpoint at `path`, on `device`.

        Read to the CPU first: the optimizers' step counters must stay there (on CUDA every Adam
        step would wait on the GPU to read them), and `load_state_dict` moves the rest.
        """
        state = torch.load(path, map_location="cpu", weights_only=True)
        trainer = cls(GanConfig(**state["config"]), state["seed"], device, samples=len(state["sample_latents"]))
        trainer.load_state_dict(state)
        return trainer


# Data


def square_rgb(image: Image.Image, side: int) -> Image.Image:
    """The largest centred square of `image`, resized to side x side (Lanczos), transparency on white."""
    if image.has_transparency_data:
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    width, height = image.size
    crop = min(width, height)
    left, top = (width - crop) // 2, (height - crop) // 2
    # reducing_gap: a huge photo is first shrunk by a whole factor (fast box filter), then Lanczos'd.
    return image.convert("RGB").resize((side, side), Image.Resampling.LANCZOS,
                                       box=(left, top, left + crop, top + crop), reducing_gap=3.0)


def dataset_pixels(paths_or_images: Sequence[str | Path | Image.Image], image_size: int) -> torch.Tensor:
    """Training images as one uint8 tensor [N, 3, S, S] on the CPU: how a data set is stored.

    Each is centre-cropped to a square, resized and made RGB (see `square_rgb`). The caller has
    validated the images; one that cannot be read raises (`ImageRejected`), none is skipped.
    """
    items = list(paths_or_images)
    if not items:
        raise ValueError("A GAN needs at least one training image, and none were given.")
    arrays = []
    for item in items:
        image = item if isinstance(item, Image.Image) else load_image_file(item)
        arrays.append(np.asarray(square_rgb(image, image_size)))  # [S, S, 3] uint8
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)  # [N, 3, S, S] uint8


def training_range(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels [N, 3, S, S] as the networks see them: float in -1..1 (Tanh's range)."""
    return pixels.float().div(127.5).sub(1)


def load_dataset(paths_or_images: Sequence[str | Path | Image.Image], image_size: int,
                 device: torch.device | str) -> torch.Tensor:
    """Training images as one tensor [N, 3, S, S] in -1..1 on `device` (see `dataset_pixels`)."""
    pixels = dataset_pixels(paths_or_images, image_size).to(device)  # uint8: a quarter of the bytes to move
    return training_range(pixels)


# Outputs


@contextlib.contextmanager
def evaluating(module: nn.Module) -> Iterator[nn.Module]:
    """Eval mode for the block (batch norm uses its running statistics, so an image does not depend
    on the others in its batch, nor the statistics on the images), then the mode it had before."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def render(generator: Generator, latents: torch.Tensor) -> list[Image.Image]:
    """Latents [N, Z, k, k] as N RGB images, in eval mode and without autograd."""
    device = next(generator.parameters()).device
    images = []
    with evaluating(generator), torch.no_grad():
        for chunk in latents.split(RENDER_BATCH):
            pixels = generator(chunk.to(device)).add(1).div(2).cpu()  # [b, 3, S', S'] in 0..1, one copy
            images += [tensor_to_image(one) for one in pixels]
    return images


def sample_grid(model: Generator | GanTrainer, latents: torch.Tensor | None = None, padding: int = 2) -> Image.Image:
    """The images of `latents` [N, Z, k, k] in a square-ish grid on white.

    Given a GanTrainer, its generator and by default its fixed sample latents: the same every
    chunk, so the grid shows one set of images learning.
    """
    if isinstance(model, GanTrainer):
        generator, latents = model.generator, model.sample_latents if latents is None else latents
    elif latents is None:
        raise ValueError("sample_grid needs latents for a bare Generator (a GanTrainer brings its own)")
    else:
        generator = model
    device = next(generator.parameters()).device
    with evaluating(generator), torch.no_grad():
        pixels = generator(latents.to(device)).add(1).div(2)  # [N, 3, S, S] in 0..1
    grid = make_grid(pixels, nrow=math.ceil(math.sqrt(len(pixels))), padding=padding, pad_value=1.0)  # [3, H, W]
    return tensor_to_image(grid)


def latent_side(image_size: int, size: int) -> int:
    """The side k of the latent grid that makes a size x size image from a generator trained at image_size.

    The first layer makes a (k + 3) x (k + 3) map; each of the log2(image_size / 4) blocks doubles
    it, so the image side is (k + 3) * image_size / 4: image_size itself (k = 1), then steps of a
    quarter of it (at 64 px: 64, 80, 96, ..., 128 with k = 5). Beyond the training size the
    generator is out of its comfort zone: each 4x4 neighbourhood of latents makes a plausible
    patch, and the patches blend into a larger, dreamier scene.
    """
    step = image_size // FIRST_SIDE
    if size < image_size or size % step:
        raise ValueError(f"This GAN makes images of {image_size} pixels or more in steps of {step} "
                         f"({image_size}, {image_size + step}, {image_size + 2 * step}, ...), not {size}.")
    return size // step - (FIRST_SIDE - 1)


def sample(generator: Generator, n: int, seed: int, size: int | None = None) -> list[Image.Image]:
    """n images from the latents of `seed` at `size` (the training size by default; larger sizes
    feed a larger latent grid, see `latent_side`)."""
    side = latent_side(generator.image_size, size or generator.image_size)
    return render(generator, random_latents(n, generator.latent_dim, seed, side))


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation from `a` (t = 0) to `b` (t = 1), each tensor taken as one vector.

    Why not a straight line: normal latents in many dimensions lie near a sphere of radius
    sqrt(Z), and the middle of the chord between two of them lies well inside it (norm about
    sqrt(Z / 2)), where the generator never looked, so a linear walk greys out half-way. The arc
    keeps the norm (exactly, for vectors of one norm). Nearly parallel vectors fall back to the line.
    The ends are `a` and `b` exactly, not up to rounding: a walk's frames pass through its points.
    """
    if t in (0, 1):
        return (a if t == 0 else b).clone()
    cos = F.cosine_similarity(a.flatten(), b.flatten(), dim=0).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    if torch.sin(omega) < 1e-6:
        return torch.lerp(a, b, t)
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def walk_latents(latent_dim: int, seed: int, frames: int, points: int = 4, side: int = 1) -> torch.Tensor:
    """`frames` latents [F, Z, side, side] along a loop through `points` random latents of `seed`.

    Frames are evenly spaced along the loop point 0 -> 1 -> ... -> last -> 0, frame 0 at point 0,
    and the last frame one step short of it: played on repeat, the animation has no seam.
    """
    if frames < 1 or points < 2:
        raise ValueError(f"a latent walk needs at least 1 frame and 2 points, not {frames} and {points}")
    stops = random_latents(points, latent_dim, seed, side)  # [P, Z, side, side]
    path = []
    for frame in range(frames):
        position = frame * points / frames  # 0 <= position < points, along the loop
        leg = int(position)
        path.append(slerp(stops[leg], stops[(leg + 1) % points], position - leg))
    return torch.stack(path)  # [F, Z, side, side]


def latent_walk(generator: Generator, seed: int, frames: int, points: int = 4,
                size: int | None = None) -> list[Image.Image]:
    """A looping animation (see `walk_latents`) through `points` random latents of `seed`."""
    side = latent_side(generator.image_size, size or generator.image_size)
    return render(generator, walk_latents(generator.latent_dim, seed, frames, points, side))


def loss_chart(trainer: GanTrainer, width: int = 480, height: int = 200) -> Image.Image:
    """Both networks' losses per step on one chart: which one is winning, and whether it settles."""
    return curves_chart({"discriminator": trainer.history.discriminator, "generator": trainer.history.generator},
                        width, height)
