"""A small loss-curve chart drawn with Pillow alone (no plotting library needed)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from PIL import Image, ImageDraw

BACKGROUND = (32, 34, 37)
AXIS = (120, 124, 130)
LINE = (88, 101, 242)
TEXT = (220, 221, 222)


def loss_chart(losses: Sequence[float], width: int = 480, height: int = 200) -> Image.Image:
    """The loss per step as a line, with the first and last values written on it."""
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    finite = [value for value in losses if math.isfinite(value)]
    left, top, right, bottom = 48, 16, width - 12, height - 24
    draw.rectangle((left, top, right, bottom), outline=AXIS)
    draw.text((left, bottom + 6), "step", fill=AXIS)
    draw.text((6, top), "loss", fill=AXIS)
    if len(finite) < 2:
        draw.text((left + 8, top + 8), "not enough steps to draw", fill=TEXT)
        return image
    low, high = min(finite), max(finite)
    span = (high - low) or 1.0
    points = [
        (left + (right - left) * index / (len(losses) - 1),
         bottom - (bottom - top) * ((value if math.isfinite(value) else high) - low) / span)
        for index, value in enumerate(losses)
    ]
    draw.line(points, fill=LINE, width=2)
    draw.text((left + 4, top + 2), f"{finite[0]:.4g}", fill=TEXT)
    draw.text((right - 60, bottom - 14), f"{finite[-1]:.4g}", fill=TEXT)
    draw.text((right - 40, bottom + 6), str(len(losses)), fill=AXIS)
    return image
