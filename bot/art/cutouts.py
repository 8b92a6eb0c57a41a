"""Random crops of the image, resized for CLIP and lightly augmented, all in a few batched ops.

Cutouts are what CLIP looks at each step: many random views stop the optimiser from fooling
CLIP with pixel-level noise that only works for one exact framing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MAX_HALVINGS = 3  # mip levels below the full image


def halve(image: torch.Tensor) -> torch.Tensor:
    """2x2 box average, an odd last row or column dropped: [1, C, H, W] -> [1, C, H//2, W//2].

    Bilinear sampling at half scale reads exactly the four pixels of each 2x2 block, equally
    weighted, so this equals F.avg_pool2d(image, 2); on CPU it is a few times faster, backward too.
    """
    return F.interpolate(image, scale_factor=0.5, mode="bilinear", align_corners=False)


def mip_atlas(image: torch.Tensor, cut_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The image and its 2x2-average halvings packed in one tensor, and where each level lies.

    Halving stops after MAX_HALVINGS or before the shorter side would drop below `cut_size`. The
    atlas is the image with its last row repeated, then the halvings side by side (top-aligned, zero
    around them): [1, C, H + 1 + H//2, W]. Full-width rows keep the image's share of the gradient
    one contiguous block. Boxes [L, 4] hold each level's (x, y, width, height) in atlas pixels.

    Samples on the full image may fall up to half a pixel outside it: on the atlas's edges,
    grid_sample's border padding repeats the edge pixels (as reflection padding would within half a
    pixel), and the repeated row does the same below it. Cutouts on the halvings never sample
    outside them (see `theta_on_atlas`).
    """
    levels = [image]
    while len(levels) <= MAX_HALVINGS and min(levels[-1].shape[-2:]) // 2 >= cut_size:
        levels.append(halve(levels[-1]))
    height, width = image.shape[-2:]
    if len(levels) == 1:
        return image, image.new_tensor([[0, 0, width, height]])
    band_height, boxes, x = levels[1].shape[-2], [(0, 0, width, height)], 0
    for level in levels[1:]:
        boxes.append((x, height + 1, level.shape[-1], level.shape[-2]))
        x += level.shape[-1]
    band = torch.cat([F.pad(level, (0, 0, 0, band_height - level.shape[-2])) for level in levels[1:]], dim=3)
    band = F.pad(band, (0, width - x))  # [1, C, H//2, W]
    bordered = F.pad(image, (0, 0, 0, 1), mode="replicate")  # [1, C, H + 1, W]
    return torch.cat([bordered, band], dim=2), image.new_tensor(boxes)


def theta_on_atlas(theta: torch.Tensor, cut_size: int, atlas: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Re-aim each cutout's affine map [cutn, 2, 3] (image coords -1..1) at its mip level in the atlas.

    A cutout s image pixels wide uses level l = floor(log2(s / cut_size)), clamped to the levels there
    are: the coarsest level on which its samples are still at least 1 pixel apart. They are also less
    than 2 pixels apart (unless clamped), so bilinear sampling reads every pixel; and for l >= 1 the
    outermost samples, half a step inside the crop, stay on the level's own pixels. Every level
    covers the same -1..1 image coordinates, so the move is a per-cutout scale and shift of the map.
    """
    image_height = boxes[0, 3]
    side_px = theta[:, 1, 1] * image_height  # [cutn] cutout side in image pixels
    level = torch.log2(side_px / cut_size).floor().clamp(0, len(boxes) - 1).long()  # [cutn]
    offset, size = boxes[level, :2], boxes[level, 2:]  # [cutn, 2] each: (x, y) and (width, height)
    atlas_size = theta.new_tensor([atlas.shape[-1], atlas.shape[-2]])  # (width, height)
    # level pixel p = ((g + 1) * size - 1) / 2 and atlas coord a = (2 * (p + offset) + 1) / atlas_size - 1
    scale = size / atlas_size  # [cutn, 2]
    shift = (size + 2 * offset) / atlas_size - 1  # [cutn, 2]
    on_atlas = theta * scale[:, :, None]  # [cutn, 2, 3]
    on_atlas[:, :, 2] += shift
    return on_atlas


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
    one bilinear `grid_sample` over per-cutout affine grids. Bilinear sampling from a crop much larger
    than `cut_size` would skip most pixels (aliasing), so each cutout samples the mip level (2x2
    averaged halving) that suits its size; the levels share one atlas tensor, which keeps it one call
    with no host sync to split the cutouts by level. Then a per-cutout contrast and colour shift and
    Gaussian noise. Everything random comes from `generator`, on the image's device.
    """
    _, channels, height, width = image.shape
    device = image.device
    theta = random_affine(cutn, height, width, generator, device,
                          min_scale=min_scale, cut_pow=cut_pow, flip_prob=flip_prob)  # [cutn, 2, 3]
    atlas, boxes = mip_atlas(image, cut_size)  # [1, 3, H_atlas, W], [L, 4]
    theta = theta_on_atlas(theta.to(image.dtype), cut_size, atlas, boxes)
    grid = F.affine_grid(theta, [cutn, channels, cut_size, cut_size], align_corners=False)  # [cutn, S, S, 2]
    # All cutouts as one tall sample of the single atlas: the backward pass then accumulates
    # straight into [1, 3, H_atlas, W] instead of a gradient of a [cutn, ...] expanded batch.
    tall_grid = grid.reshape(1, cutn * cut_size, cut_size, 2)  # [1, cutn*S, S, 2]
    tall = F.grid_sample(atlas, tall_grid, mode="bilinear", padding_mode="border",
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
