"""Image file I/O: checked loading of untrusted uploads, PNG metadata, animations, upload encoding."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, PngImagePlugin, UnidentifiedImageError, features

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
FRAME_MS = 100
LAST_FRAME_MS = 1200
# Generous limits for files the operator hands to the render CLI or that were already checked on upload.
LOCAL_MAX_BYTES = 64 * 1024 * 1024
LOCAL_MAX_PIXELS = 64_000_000


class ImageRejected(ValueError):
    """An image Easel will not use; the message is meant for the person who sent it."""


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def load_image_bytes(data: bytes, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """Decode an untrusted PNG, JPEG, WebP or GIF (first frame) into an RGB or RGBA image.

    The byte size, the format (detected from the content, not the file name) and the pixel
    count from the header are all checked before any pixel is decoded.
    """
    if len(data) > max_bytes:
        raise ImageRejected(f"That image is {_megabytes(len(data))}; the limit is {_megabytes(max_bytes)}.")
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)  # reads the header only
    except Image.DecompressionBombError:
        raise ImageRejected("That image claims far too many pixels; send a smaller one.") from None
    except (UnidentifiedImageError, OSError):
        raise ImageRejected(
            "That file is not an image Easel can read: send a PNG, JPEG, WebP or GIF."
        ) from None
    width, height = image.size
    if width * height > max_pixels:
        raise ImageRejected(
            f"That image is {width}x{height} ({width * height:,} pixels); the limit is {max_pixels:,} pixels."
        )
    try:
        image.seek(0)  # the first frame of a GIF or animated WebP
        image.load()
    except Image.DecompressionBombError:
        raise ImageRejected("That image claims far too many pixels; send a smaller one.") from None
    except (OSError, ValueError, EOFError, SyntaxError):
        raise ImageRejected("That image is damaged or truncated and could not be decoded.") from None
    return image.convert("RGBA" if image.has_transparency_data else "RGB")


def load_image_file(
    path: str | Path, *, max_bytes: int = LOCAL_MAX_BYTES, max_pixels: int = LOCAL_MAX_PIXELS
) -> Image.Image:
    """`load_image_bytes` for a file on disk; a missing file is an `ImageRejected` too."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ImageRejected(f"Could not read the image {str(path)!r}: {error.strerror or error}.") from None
    return load_image_bytes(data, max_bytes=max_bytes, max_pixels=max_pixels)


def save_png(image: Image.Image, path: str | Path, metadata: dict[str, str]) -> None:
    """Write a PNG with one text chunk per metadata key (e.g. `easel` holding the job as JSON)."""
    info = PngImagePlugin.PngInfo()
    for key, value in metadata.items():
        info.add_itxt(key, value)  # iTXt: UTF-8, so prompts in any language survive
    image.save(path, format="PNG", pnginfo=info)


def read_png_metadata(path: str | Path) -> dict[str, str]:
    """The text chunks of a PNG written by `save_png`."""
    with Image.open(path) as image:
        image.load()  # text chunks after the image data are only read once the image is loaded
        return dict(getattr(image, "text", {}))


def read_job_metadata(path: str | Path) -> dict | None:
    """The JSON job stored in a PNG's `easel` chunk, or None if it has none."""
    text = read_png_metadata(path).get("easel")
    return json.loads(text) if text else None


def _same_size(frames: Sequence[Image.Image]) -> list[Image.Image]:
    """Frames resized to the last frame's size (techniques with octaves preview at several sizes)."""
    size = frames[-1].size
    return [f.convert("RGB") if f.size == size else f.convert("RGB").resize(size) for f in frames]


def _animation_bytes(frames: Sequence[Image.Image], format: str, quality: int = 80) -> bytes:
    frames = _same_size(frames)
    durations = [FRAME_MS] * (len(frames) - 1) + [LAST_FRAME_MS]
    buffer = io.BytesIO()
    options: dict = {"save_all": True, "append_images": frames[1:], "duration": durations, "loop": 0}
    if format == "WEBP":
        options["quality"] = quality
    else:
        options["optimize"] = True
    frames[0].save(buffer, format=format, **options)
    return buffer.getvalue()


def save_animation(frames: Sequence[Image.Image], path: str | Path) -> None:
    """A looping GIF or animated WebP (chosen by the suffix), the last frame held longer."""
    if not frames:
        raise ValueError("an animation needs at least one frame")
    format = "WEBP" if Path(path).suffix.lower() == ".webp" else "GIF"
    Path(path).write_bytes(_animation_bytes(frames, format))


def _shrunk(image: Image.Image) -> Image.Image:
    size = (max(1, image.width * 3 // 4), max(1, image.height * 3 // 4))
    return image.resize(size, Image.Resampling.LANCZOS)


def _lossy_format() -> tuple[str, str]:
    return ("WEBP", "webp") if features.check("webp") else ("JPEG", "jpg")


def encode_for_upload(image: Image.Image, limit_bytes: int) -> tuple[bytes, str]:
    """The image as PNG if it fits `limit_bytes`, else lossy at falling quality, then downscaled.

    Returns the bytes and the file extension without the dot ("png", "webp" or "jpg").
    """
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    if buffer.tell() <= limit_bytes:
        return buffer.getvalue(), "png"
    format, extension = _lossy_format()
    while True:
        for quality in (90, 75, 60, 45):
            buffer = io.BytesIO()
            lossy = image.convert("RGB") if format == "JPEG" else image
            lossy.save(buffer, format=format, quality=quality)
            if buffer.tell() <= limit_bytes:
                return buffer.getvalue(), extension
        if min(image.size) <= 16:
            raise ValueError(f"cannot encode an image in {limit_bytes} bytes")
        image = _shrunk(image)


def encode_animation_for_upload(frames: Sequence[Image.Image], limit_bytes: int) -> tuple[bytes, str]:
    """An animation as GIF if it fits, else animated WebP; then fewer and smaller frames until it fits."""
    frames = _same_size(frames)
    data = _animation_bytes(frames, "GIF")
    if len(data) <= limit_bytes:
        return data, "gif"
    while True:
        if features.check("webp"):
            for quality in (80, 60, 40):
                data = _animation_bytes(frames, "WEBP", quality)
                if len(data) <= limit_bytes:
                    return data, "webp"
        else:
            data = _animation_bytes(frames, "GIF")
            if len(data) <= limit_bytes:
                return data, "gif"
        if min(frames[0].size) <= 16:
            raise ValueError(f"cannot encode an animation in {limit_bytes} bytes")
        if len(frames) > 8:
            frames = [*frames[:-1:2], frames[-1]]  # every other frame, keeping the final one
        frames = [_shrunk(frame) for frame in frames]


def safe_filename(stem: str) -> str:
    """A short file name stem of [a-z0-9-] only, e.g. "easel-42-final"."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")[:64].strip("-")
    return cleaned or "easel"
