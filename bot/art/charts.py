"""Small loss-curve charts drawn with Pillow alone (no plotting library needed)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from PIL import Image, ImageDraw

BACKGROUND = (32, 34, 37)
AXIS = (120, 124, 130)
LINE = (88, 101, 242)
TEXT = (220, 221, 222)
# One colour per curve of `curves_chart`, in order (Discord's blurple, red, green, yellow, fuchsia).
PALETTE = (LINE, (237, 66, 69), (87, 242, 135), (254, 231, 92), (235, 69, 158))


def _axes(width: int, height: int) -> tuple[Image.Image, ImageDraw.ImageDraw, tuple[int, int, int, int]]:
    """A blank chart with its frame and axis labels, and the plot box (left, top, right, bottom)."""
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    box = left, top, _, bottom = 48, 16, width - 12, height - 24
    draw.rectangle(box, outline=AXIS)
    draw.text((left, bottom + 6), "step", fill=AXIS)
    draw.text((6, top), "loss", fill=AXIS)
    return image, draw, box


def _points(values: Sequence[float], steps: int, low: float, high: float,
            box: tuple[int, int, int, int]) -> list[tuple[float, float]]:
    """A curve's pixel positions: `steps` spread over the box's width, low..high over its height.
    A value that is not finite (a diverged step) is drawn at the top rather than dropped."""
    left, top, right, bottom = box
    span = (high - low) or 1.0
    return [
        (left + (right - left) * index / (steps - 1),
         bottom - (bottom - top) * ((value if math.isfinite(value) else high) - low) / span)
        for index, value in enumerate(values)
    ]


def loss_chart(losses: Sequence[float], width: int = 480, height: int = 200) -> Image.Image:
    """The loss per step as a line, with the first and last values written on it."""
    image, draw, box = _axes(width, height)
    left, top, right, bottom = box
    finite = [value for value in losses if math.isfinite(value)]
    if len(finite) < 2:
        draw.text((left + 8, top + 8), "not enough steps to draw", fill=TEXT)
        return image
    draw.line(_points(losses, len(losses), min(finite), max(finite), box), fill=LINE, width=2)
    draw.text((left + 4, top + 2), f"{finite[0]:.4g}", fill=TEXT)
    draw.text((right - 60, bottom - 14), f"{finite[-1]:.4g}", fill=TEXT)
    draw.text((right - 40, bottom + 6), str(len(losses)), fill=AXIS)
    return image


def curves_chart(curves: Mapping[str, Sequence[float]], width: int = 480, height: int = 200) -> Image.Image:
    """Several named per-step curves on the same axes (a GAN's discriminator and generator losses),
    each in its colour of `PALETTE`, with a legend giving each one's first and last value.

    One scale for all: the curves are read against each other (which network is winning), so each
    keeping its own scale would mislead. Steps run along the longest curve.
    """
    if len(curves) > len(PALETTE):
        raise ValueError(f"curves_chart draws at most {len(PALETTE)} curves, not {len(curves)}")
    image, draw, box = _axes(width, height)
    left, top, right, bottom = box
    finite = {name: [value for value in values if math.isfinite(value)] for name, values in curves.items()}
    everything = [value for values in finite.values() for value in values]
    steps = max((len(values) for values in curves.values()), default=0)
    if steps < 2 or not any(len(values) >= 2 for values in finite.values()):
        draw.text((left + 8, top + 8), "not enough steps to draw", fill=TEXT)
        return image
    low, high = min(everything), max(everything)
    for values, colour in zip(curves.values(), PALETTE, strict=False):
        if len(values) >= 2:
            draw.line(_points(values, steps, low, high, box), fill=colour, width=2)
    for row, ((name, values), colour) in enumerate(zip(finite.items(), PALETTE, strict=False)):
        legend = f"{name} {values[0]:.4g} -> {values[-1]:.4g}" if values else f"{name} (no finite value)"
        draw.text((left + 4, top + 2 + 12 * row), legend, fill=colour)
    draw.text((left - 44, top + 14), f"{high:.3g}", fill=AXIS)
    draw.text((left - 44, bottom - 12), f"{low:.3g}", fill=AXIS)
    draw.text((right - 40, bottom + 6), str(steps), fill=AXIS)
    return image
