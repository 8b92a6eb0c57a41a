"""Image file I/O: checked loading of untrusted uploads, PNG metadata, animations, upload encoding."""

from __future__ import annotations

import io
import json
import re
import struct
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from PIL import Image, PngImagePlugin, UnidentifiedImageError, features

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
FRAME_MS = 100
LAST_FRAME_MS = 1200
# Generous limits for files the operator hands to the render CLI or that were already checked on upload.
LOCAL_MAX_BYTES = 64 * 1024 * 1024
LOCAL_MAX_PIXELS = 64_000_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_TEXT_CHUNK = 1024 * 1024  # the most text one chunk of an untrusted PNG may hold, once decompressed
MAX_TEXT_TOTAL = 8 * MAX_TEXT_CHUNK  # and all its text chunks together
MIN_RECIPE_SIDE = 256  # an upload is shrunk down to this as a PNG that keeps its text before going lossy


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


def _png_info(metadata: Mapping[str, str]) -> PngImagePlugin.PngInfo:
    """One text chunk per key: tEXt when the value is ASCII (every PNG reader knows it), else iTXt
    (UTF-8, so prompts in any language survive)."""
    info = PngImagePlugin.PngInfo()
    for key, value in metadata.items():
        if value.isascii():
            info.add_text(key, value)
        else:
            info.add_itxt(key, value)
    return info


def save_png(image: Image.Image, path: str | Path, metadata: Mapping[str, str]) -> None:
    """Write a PNG with one text chunk per metadata key (e.g. `easel` holding the job as JSON)."""
    image.save(path, format="PNG", pnginfo=_png_info(metadata))


def read_png_metadata(path: str | Path) -> dict[str, str]:
    """The text chunks of a PNG written by `save_png`."""
    with Image.open(path) as image:
        image.load()  # text chunks after the image data are only read once the image is loaded
        return dict(getattr(image, "text", {}))


def read_job_metadata(path: str | Path) -> dict | None:
    """The JSON job stored in a PNG's `easel` chunk, or None if it has none."""
    text = read_png_metadata(path).get("easel")
    return json.loads(text) if text else None


def _inflate(data: bytes, limit: int) -> bytes:
    """zlib data decompressed to at most `limit` bytes: a compressed text bomb is refused, not expanded."""
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise ImageRejected("That PNG has a damaged compressed text chunk.") from None
    if len(text) > limit or inflater.unconsumed_tail:
        raise ImageRejected("That PNG has a text chunk far too large to read.")
    return text


def _text_chunk(kind: bytes, body: bytes) -> tuple[str, str]:
    """(keyword, text) of a tEXt, zTXt or iTXt chunk body."""
    keyword, _, rest = body.partition(b"\0")
    if kind == b"tEXt":
        return keyword.decode("latin-1"), rest.decode("latin-1")
    if kind == b"zTXt":
        return keyword.decode("latin-1"), _inflate(rest[1:], MAX_TEXT_CHUNK).decode("latin-1")
    if len(rest) < 2:  # iTXt: flag, method, language, translated keyword, UTF-8 text
        raise ImageRejected("That PNG has a damaged text chunk.")
    compressed, rest = rest[0], rest[2:]
    _language, _, rest = rest.partition(b"\0")
    _translated, _, text = rest.partition(b"\0")
    if compressed:
        text = _inflate(text, MAX_TEXT_CHUNK)
    try:
        return keyword.decode("latin-1"), text.decode("utf-8")
    except UnicodeDecodeError:
        raise ImageRejected("That PNG has a text chunk that is not valid UTF-8.") from None


def read_png_text(data: bytes, *, max_bytes: int) -> dict[str, str]:
    """The text chunks (tEXt, zTXt, iTXt) of an untrusted PNG, wherever they are; no pixel is decoded.

    The byte size is checked first, then the header through Pillow (format and decompression-bomb
    limits), then each text chunk's length and checksum; a compressed chunk may expand to
    `MAX_TEXT_CHUNK` bytes at most, all of them to `MAX_TEXT_TOTAL`. The first chunk of a keyword
    wins. Raises ImageRejected with a message for the sender.
    """
    if len(data) > max_bytes:
        raise ImageRejected(f"That file is {_megabytes(len(data))}; the limit is {_megabytes(max_bytes)}.")
    if not data.startswith(PNG_SIGNATURE):
        raise ImageRejected("That file is not a PNG.")
    try:
        with Image.open(io.BytesIO(data), formats=("PNG",)):  # the header only: a sane PNG, no bomb
            pass
    except Image.DecompressionBombError:
        raise ImageRejected("That image claims far too many pixels.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ImageRejected("That PNG is damaged and could not be read.") from None
    texts: dict[str, str] = {}
    total = 0
    position = len(PNG_SIGNATURE)
    while True:
        length, kind = struct.unpack(">I4s", data[position : position + 8].ljust(8, b"\0"))
        end = position + 8 + length
        if end + 4 > len(data):
            raise ImageRejected("That PNG is truncated.")
        chunk_start, position = position, end + 4
        if kind == b"IEND":
            break
        if kind not in (b"tEXt", b"zTXt", b"iTXt"):
            continue  # pixels and the rest: skipped unread
        if length > MAX_TEXT_CHUNK:
            raise ImageRejected("That PNG has a text chunk far too large to read.")
        body = data[chunk_start + 8 : end]
        (checksum,) = struct.unpack(">I", data[end : end + 4])
        if zlib.crc32(kind + body) != checksum:
            raise ImageRejected("That PNG is damaged (a text chunk fails its checksum).")
        keyword, text = _text_chunk(kind, body)
        total += len(text)
        if total > MAX_TEXT_TOTAL:
            raise ImageRejected("That PNG holds far too much text to read.")
        texts.setdefault(keyword, text)
    return texts


def png_bytes(image: Image.Image) -> bytes:
    """A preview as PNG bytes (for a Discord upload or a job event row)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _same_size(frames: Sequence[Image.Image]) -> list[Image.Image]:
    """Frames resized to the last frame's size (techniques with octaves preview at several sizes)."""
    size = frames[-1].size
    return [f.convert("RGB") if f.size == size else f.convert("RGB").resize(size) for f in frames]


def _animation_bytes(frames: Sequence[Image.Image], format: str, quality: int = 80, *, hold_last: bool = True) -> bytes:
    frames = _same_size(frames)
    durations = [FRAME_MS] * (len(frames) - 1) + [LAST_FRAME_MS if hold_last else FRAME_MS]
    buffer = io.BytesIO()
    options: dict = {"save_all": True, "append_images": frames[1:], "duration": durations, "loop": 0}
    if format == "WEBP":
        options["quality"] = quality
    else:
        options["optimize"] = True
    frames[0].save(buffer, format=format, **options)
    return buffer.getvalue()


def save_animation(frames: Sequence[Image.Image], path: str | Path, *, hold_last: bool = True) -> None:
    """A looping GIF or animated WebP (chosen by the suffix), the last frame held longer unless `hold_last`
    is False: a latent walk's last frame leads back to its first, and a pause there would show the seam."""
    if not frames:
        raise ValueError("an animation needs at least one frame")
    format = "WEBP" if Path(path).suffix.lower() == ".webp" else "GIF"
    Path(path).write_bytes(_animation_bytes(frames, format, hold_last=hold_last))


def _shrunk(image: Image.Image) -> Image.Image:
    size = (max(1, image.width * 3 // 4), max(1, image.height * 3 // 4))
    return image.resize(size, Image.Resampling.LANCZOS)


def _lossy_format() -> tuple[str, str]:
    return ("WEBP", "webp") if features.check("webp") else ("JPEG", "jpg")


def encode_for_upload(
    image: Image.Image, limit_bytes: int, *, metadata: Mapping[str, str] | None = None
) -> tuple[bytes, str]:
    """The image as PNG if it fits `limit_bytes`, else lossy at falling quality, then downscaled.

    With `metadata` (a result's text chunks: its recipe) the PNG carries them, and an image too big
    is first shrunk as a PNG, down to `MIN_RECIPE_SIDE` on its shorter side, so that a file saved
    from Discord still holds the recipe; only beyond that does it go lossy, without the chunks.
    Returns the bytes and the file extension without the dot ("png", "webp" or "jpg").
    """
    info = _png_info(metadata) if metadata else None
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    if buffer.tell() <= limit_bytes:
        return buffer.getvalue(), "png"
    if info is not None:
        smaller = image
        while min(smaller.size) * 3 // 4 >= min(MIN_RECIPE_SIDE, min(image.size)):
            smaller = _shrunk(smaller)
            buffer = io.BytesIO()
            smaller.save(buffer, format="PNG", pnginfo=info, optimize=True)
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


def encode_animation_for_upload(frames: Sequence[Image.Image], limit_bytes: int, *,
                                hold_last: bool = True) -> tuple[bytes, str]:
    """An animation as GIF if it fits, else animated WebP; then fewer and smaller frames until it fits."""
    frames = _same_size(frames)
    data = _animation_bytes(frames, "GIF", hold_last=hold_last)
    if len(data) <= limit_bytes:
        return data, "gif"
    while True:
        if features.check("webp"):
            for quality in (80, 60, 40):
                data = _animation_bytes(frames, "WEBP", quality, hold_last=hold_last)
                if len(data) <= limit_bytes:
                    return data, "webp"
        else:
            data = _animation_bytes(frames, "GIF", hold_last=hold_last)
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
