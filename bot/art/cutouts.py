"""Random crops of the image, resized for CLIP and lightly augmented, all in a few batched ops.

Cutouts are what CLIP looks at each step: many random views stop the optimiser from fooling
CLIP with pixel-level noise that only works for one exact framing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_affine(
    cutn: int, height: int, width: int, generator: torch.Generator, device: torch.device, *,
    min_scale: float, cut_pow: float, flip_prob: float,
) -> torch.Tensor:
    """[cutn, 2, 3] affine maps from a cutout to a random square inside the image (grid coords -1..1)."""
    def uniform() -> torch.Tensor:
        return torch.rand(cutn, generator=generator, device=device)  # [cutn]

    scale = min_scale + (1 - min_scale) * uniform() ** cut_pow  # side as a fraction of the shorter side
    shorter = min(height, width)
    scale_x, scale_y = scale * shorter / width, scale * shorter / height  # half-extents in grid units
    center_x = (1 - scale_x) * (2 * uniform() - 1)  # keeps the square inside the image
    center_y = (1 - scale_y) * (2 * uniform() - 1)
    flip = torch.where(uniform() < flip_prob, -1.0, 1.0)  # mirror left-right
    zero = torch.zeros_like(scale)
    return torch.stack([
        torch.stack([scale_x * flip, zero, center_x], dim=-1),
        torch.stack([zero, scale_y, center_y], dim=-1),
    ], dim=1)  # [cutn, 2, 3]


def make_cutouts(
    image: torch.Tensor, cutn: int, cut_size: int, generator: torch.Generator, *,
    min_scale: float = 0.25, cut_pow: float = 1.0, flip_prob: float = 0.5,
    colour_jitter: float = 0.05, noise: float = 0.05,
) -> torch.Tensor:
    """`cutn` random square crops of image [1, 3, H, W], each resized to `cut_size`: [cutn, 3, S, S].

    Crop sides are `min_scale`..1 of the shorter image side. Cropping, resizing and flipping are
    one `grid_sample` over per-cutout affine grids (bilinear: very large crops alias a little, which
    the random offsets average out); then a per-cutout contrast and colour shift and Gaussian noise.
    Everything random comes from `generator`, on the image's device, so there are no host syncs.
    """
    _, channels, height, width = image.shape
    device = image.device
    theta = random_affine(cutn, height, width, generator, device,
                          min_scale=min_scale, cut_pow=cut_pow, flip_prob=flip_prob)  # [cutn, 2, 3]
    grid = F.affine_grid(theta, [cutn, channels, cut_size, cut_size], align_corners=False)  # [cutn, S, S, 2]
    # All cutouts as one tall sample of the single image: the backward pass then accumulates
    # straight into [1, 3, H, W] instead of a [cutn, 3, H, W] gradient of an expanded batch.
    tall_grid = grid.reshape(1, cutn * cut_size, cut_size, 2).to(image.dtype)  # [1, cutn*S, S, 2]
    tall = F.grid_sample(image, tall_grid, mode="bilinear", padding_mode="reflection",
                         align_corners=False)  # [1, 3, cutn*S, S]
    cutouts = tall.view(channels, cutn, cut_size, cut_size).transpose(0, 1)  # [cutn, 3, S, S]

    def symmetric(*shape: int) -> torch.Tensor:
        return 2 * torch.rand(shape, generator=generator, device=device, dtype=image.dtype) - 1

    contrast = 1 + colour_jitter * symmetric(cutn, 1, 1, 1)
    colour_shift = colour_jitter * symmetric(cutn, channels, 1, 1)
    noise_level = noise * (symmetric(cutn, 1, 1, 1) + 1) / 2  # 0..noise
    mean = cutouts.mean(dim=(1, 2, 3), keepdim=True)  # [cutn, 1, 1, 1]
    cutouts = (cutouts - mean) * contrast + mean + colour_shift
    gaussian = torch.randn(cutouts.shape, generator=generator, device=device, dtype=image.dtype)
    return cutouts + noise_level * gaussian  # [cutn, 3, S, S]
