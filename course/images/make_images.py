"""Draw the starter course's input images with Pillow: `python course/images/make_images.py`.

Everything is procedural and seeded, so running it again gives the same pictures. Each image is
small (at most 256 px a side) and saved as a palette PNG of a few KB:

- harbour.png      a harbour at dusk: sky, sun, hills, a lighthouse, boats (content for style, dream, imagine)
- clouds.png       soft clouds in a blue sky (a classic thing to dream on)
- mosaic.png       irregular tiles with grout (a style image)
- brushstrokes.png thick swirling strokes in a night palette (a style image)
- flower.png       a flower on a transparent background (a target for nca)
- smiley.png       an emoji-like face on a transparent background (a target for nca and cppn)
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent


def save(image: Image.Image, name: str, colours: int = 48) -> None:
    """A palette PNG: far smaller than RGB for flat drawings; transparency survives for RGBA."""
    if image.mode == "RGBA":
        quantised = image.quantize(colours, method=Image.Quantize.FASTOCTREE)
    else:
        quantised = image.quantize(colours, method=Image.Quantize.MEDIANCUT)
    quantised.save(HERE / name, optimize=True)
    print(f"{name}: {image.width}x{image.height}, {(HERE / name).stat().st_size} bytes")


def mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def harbour() -> Image.Image:
    width, height, horizon = 256, 192, 112
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(0, horizon, 4):  # the sky in bands, deep blue to orange
        draw.rectangle((0, y, width, y + 4), fill=mix((38, 52, 110), (250, 160, 90), y / horizon))
    draw.ellipse((150, 62, 190, 102), fill=(255, 214, 120))  # the sun, low
    draw.polygon([(0, horizon), (0, 78), (40, 70), (84, 88), (120, horizon)], fill=(70, 60, 96))  # far hills
    draw.polygon([(150, horizon), (200, 84), (256, 76), (256, horizon)], fill=(84, 70, 104))
    for y in range(horizon, height, 6):  # the sea, darker towards us
        depth = (y - horizon) / (height - horizon)
        draw.rectangle((0, y, width, y + 6), fill=mix((220, 130, 100), (24, 44, 84), depth))
    for y in range(horizon + 4, height, 9):  # the sun's glitter on the water
        half = 14 - (y - horizon) // 8
        draw.line((170 - half, y, 170 + half, y), fill=(255, 200, 130), width=2)
    draw.polygon([(0, 150), (0, height), (96, height), (70, 150)], fill=(60, 52, 50))  # the pier
    draw.rectangle((28, 92, 42, 150), fill=(236, 232, 222))  # the lighthouse
    for y in (104, 122, 140):
        draw.rectangle((28, y, 42, y + 6), fill=(196, 50, 46))
    draw.rectangle((26, 84, 44, 92), fill=(40, 40, 48))
    draw.polygon([(25, 84), (35, 74), (45, 84)], fill=(196, 50, 46))
    draw.polygon([(44, 86), (100, 80), (100, 92)], fill=(255, 236, 160))  # its beam
    for x, y, colour in ((120, 140, (200, 70, 50)), (196, 128, (240, 230, 210)), (222, 158, (60, 120, 150))):
        draw.polygon([(x - 16, y), (x + 16, y), (x + 10, y + 8), (x - 10, y + 8)], fill=colour)  # hull
        draw.line((x, y, x, y - 26), fill=(50, 40, 40), width=2)  # mast
        draw.polygon([(x + 2, y - 24), (x + 2, y - 3), (x + 16, y - 3)], fill=(250, 246, 236))  # sail
    return image


def clouds() -> Image.Image:
    rng = random.Random(5)
    image = Image.new("RGB", (256, 256))
    draw = ImageDraw.Draw(image)
    for y in range(0, 256, 4):
        draw.rectangle((0, y, 256, y + 4), fill=mix((64, 118, 196), (170, 205, 235), y / 256))
    for _ in range(11):  # each cloud a heap of overlapping puffs, lit from above
        cx, cy, spread = rng.uniform(-20, 276), rng.uniform(20, 230), rng.uniform(20, 46)
        for _ in range(9):
            x, y, r = cx + rng.gauss(0, spread), cy + rng.gauss(0, spread / 3), rng.uniform(8, 22)
            draw.ellipse((x - r, y - r + 3, x + r, y + r + 3), fill=(186, 196, 214))
            draw.ellipse((x - r, y - r, x + r, y + r - 2), fill=(246, 248, 252))
    return image.filter(ImageFilter.GaussianBlur(2.5))


def mosaic() -> Image.Image:
    rng = random.Random(11)
    palette = [(214, 96, 44), (236, 180, 64), (46, 110, 160), (28, 60, 96), (240, 226, 196), (122, 160, 90),
               (180, 60, 70)]
    tile = 16
    image = Image.new("RGB", (192, 192), (70, 62, 56))  # the grout
    draw = ImageDraw.Draw(image)
    for row in range(-1, 13):
        for col in range(-1, 13):
            corners = [(col * tile + dx + rng.uniform(-3, 3) + (tile / 2 if row % 2 else 0),
                        row * tile + dy + rng.uniform(-3, 3)) for dx, dy in ((2, 2), (tile - 2, 2),
                                                                             (tile - 2, tile - 2), (2, tile - 2))]
            draw.polygon(corners, fill=rng.choice(palette))
    return image


def brushstrokes() -> Image.Image:
    rng = random.Random(3)
    palette = [(20, 36, 92), (36, 76, 150), (80, 130, 200), (240, 210, 90), (250, 240, 190), (16, 24, 48)]
    image = Image.new("RGB", (192, 192), (24, 40, 96))
    draw = ImageDraw.Draw(image)
    for _ in range(420):  # short strokes that follow a swirling flow field
        x, y = rng.uniform(0, 192), rng.uniform(0, 192)
        colour, width = rng.choice(palette), rng.randint(3, 6)
        points = [(x, y)]
        for _ in range(6):
            angle = math.sin(x / 23) * 2.2 + math.cos(y / 31) * 2.2
            x, y = x + 3 * math.cos(angle), y + 3 * math.sin(angle)
            points.append((x, y))
        draw.line(points, fill=colour, width=width, joint="curve")
    return image


def flower() -> Image.Image:
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.line((32, 36, 32, 62), fill=(60, 140, 60, 255), width=3)  # the stem
    draw.ellipse((33, 48, 46, 55), fill=(80, 170, 70, 255))  # a leaf
    for k in range(6):
        angle = 2 * math.pi * k / 6
        x, y = 32 + 12 * math.cos(angle), 26 + 12 * math.sin(angle)
        draw.ellipse((x - 8, y - 8, x + 8, y + 8), fill=(236, 96, 140, 255))
    draw.ellipse((25, 19, 39, 33), fill=(250, 200, 60, 255))
    return image


def smiley() -> Image.Image:
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((4, 4, 60, 60), fill=(250, 196, 50, 255), outline=(200, 130, 30, 255), width=2)
    draw.ellipse((20, 20, 27, 30), fill=(70, 40, 30, 255))
    draw.ellipse((37, 20, 44, 30), fill=(70, 40, 30, 255))
    draw.arc((17, 24, 47, 50), start=20, end=160, fill=(70, 40, 30, 255), width=3)
    return image


def main() -> None:
    save(harbour(), "harbour.png")
    save(clouds(), "clouds.png", colours=32)
    save(mosaic(), "mosaic.png", colours=16)
    save(brushstrokes(), "brushstrokes.png", colours=16)
    save(flower(), "flower.png", colours=16)
    save(smiley(), "smiley.png", colours=16)


if __name__ == "__main__":
    main()
