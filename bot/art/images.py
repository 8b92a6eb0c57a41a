"""Conversions between tensors and Pillow images, shared by every technique."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def image_to_tensor(image: Image.Image, size: int | tuple[int, int], device: torch.device) -> torch.Tensor:
    """An RGB image resized to `size` (square side, or (width, height)) as a [1, 3, H, W] float in 0..1."""
    width, height = (size, size) if isinstance(size, int) else size
    image = image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    array = np.asarray(image, dtype=np.float32) / 255.0  # [H, W, 3]
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).to(device)


def tensor_to_image(pixels: torch.Tensor) -> Image.Image:
    """A [3, H, W] or [1, 3, H, W] tensor in 0..1 as an RGB image (this syncs with the device)."""
    if pixels.dim() == 4:
        pixels = pixels[0]
    array = (pixels.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
    return Image.fromarray(array.permute(1, 2, 0).cpu().numpy(), mode="RGB")


def preview_image(pixels: torch.Tensor, max_side: int = 256) -> Image.Image:
    """A cheap downscaled preview: shrink on the device first, then copy the few pixels to the host."""
    if pixels.dim() == 3:
        pixels = pixels.unsqueeze(0)
    height, width = pixels.shape[-2:]
    scale = max_side / max(height, width)
    if scale < 1:
        pixels = torch.nn.functional.interpolate(
            pixels.detach().float(), size=(max(1, round(height * scale)), max(1, round(width * scale))),
            mode="area",
        )
    return tensor_to_image(pixels)
