import io
import struct
import zlib

import pytest
from PIL import Image

from bot.art.imagefiles import (
    MIN_RECIPE_SIDE,
    ImageRejected,
    encode_animation_for_upload,
    encode_for_upload,
    load_image_bytes,
    read_job_metadata,
    read_png_metadata,
    read_png_text,
    safe_filename,
    save_animation,
    save_png,
)

LIMITS = dict(max_bytes=1_000_000, max_pixels=1_000_000)


def encoded(image, format, **options):
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def png_header_claiming(width, height):
    """A tiny PNG whose header claims width x height pixels (the data is never reached)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def test_rejects_text_and_unsupported_formats():
    with pytest.raises(ImageRejected, match="PNG, JPEG, WebP or GIF"):
        load_image_bytes(b"hello, this is not an image", **LIMITS)
    with pytest.raises(ImageRejected, match="PNG, JPEG, WebP or GIF"):
        load_image_bytes(encoded(Image.new("RGB", (8, 8)), "BMP"), **LIMITS)


def test_rejects_oversize_bytes_before_decoding():
    with pytest.raises(ImageRejected, match="limit is"):
        load_image_bytes(b"\0" * 2000, max_bytes=1000, max_pixels=10**6)


@pytest.mark.parametrize(("width", "height"), [(2000, 2000), (100_000, 100_000)])
def test_rejects_decompression_bombs_from_the_header(width, height):
    with pytest.raises(ImageRejected, match="pixels"):
        load_image_bytes(png_header_claiming(width, height), **LIMITS)


def test_rejects_truncated_data():
    data = encoded(Image.effect_noise((64, 64), 50).convert("RGB"), "PNG")
    with pytest.raises(ImageRejected, match="damaged"):
        load_image_bytes(data[: len(data) // 2], **LIMITS)


@pytest.mark.parametrize(
    ("format", "mode"), [("PNG", "RGBA"), ("JPEG", "RGB"), ("WEBP", "RGB"), ("WEBP", "RGBA"), ("PNG", "L")]
)
def test_accepts_supported_formats(format, mode):
    image = load_image_bytes(encoded(Image.new(mode, (12, 10), 200), format), **LIMITS)
    assert image.size == (12, 10)
    assert image.mode == ("RGBA" if mode == "RGBA" else "RGB")


def test_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (8, 8), (255, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 255))]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])
    image = load_image_bytes(data, **LIMITS)
    assert image.mode == "RGB" and image.getpixel((0, 0)) == (255, 0, 0)


def test_png_metadata_round_trip(tmp_path):
    metadata = {"easel": '{"technique": "imagine", "seed": 3, "prompt": "phare \u00e0 minuit"}', "Seed": "3"}
    save_png(Image.new("RGB", (4, 4)), tmp_path / "a.png", metadata)
    assert read_png_metadata(tmp_path / "a.png") == metadata
    assert read_job_metadata(tmp_path / "a.png")["prompt"] == "phare \u00e0 minuit"


@pytest.mark.parametrize("suffix", [".gif", ".webp"])
def test_save_animation_loops_and_holds_the_last_frame(tmp_path, suffix):
    frames = [Image.new("RGB", (16, 16), (i * 60, 0, 0)) for i in range(4)] + [Image.new("RGB", (8, 8))]
    save_animation(frames, tmp_path / f"a{suffix}")
    with Image.open(tmp_path / f"a{suffix}") as animation:
        assert animation.n_frames == 5 and animation.size == (8, 8)
        assert animation.info.get("loop") == 0
        animation.seek(4)
        if suffix == ".gif":  # Pillow's WebP reader does not report per-frame durations
            assert animation.info["duration"] > 100


def test_a_seamless_loop_keeps_every_frame_as_long(tmp_path):
    frames = [Image.new("RGB", (16, 16), (i * 60, 0, 0)) for i in range(4)]
    save_animation(frames, tmp_path / "walk.gif", hold_last=False)
    data, _ = encode_animation_for_upload(frames, 100_000, hold_last=False)
    for source in (tmp_path / "walk.gif", io.BytesIO(data)):
        with Image.open(source) as animation:
            durations = []
            for index in range(animation.n_frames):
                animation.seek(index)
                durations.append(animation.info["duration"])
        assert len(set(durations)) == 1


def test_upload_encoding_fits_the_limit():
    small = Image.new("RGB", (32, 32), (10, 20, 30))
    data, extension = encode_for_upload(small, 10_000)
    assert extension == "png" and Image.open(io.BytesIO(data)).size == (32, 32)
    noise = Image.effect_noise((256, 256), 80).convert("RGB")
    data, extension = encode_for_upload(noise, 8_000)
    assert len(data) <= 8_000 and extension in ("webp", "jpg")
    frames = [Image.effect_noise((96, 96), 40 + i).convert("RGB") for i in range(12)]
    data, extension = encode_animation_for_upload(frames, 20_000)
    assert len(data) <= 20_000 and extension in ("gif", "webp")


def chunk_kinds(data):
    """The PNG's chunks as (type, keyword or b"") in file order."""
    kinds, position = [], 8
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        kinds.append((kind, body.partition(b"\0")[0] if kind in (b"tEXt", b"iTXt") else b""))
        position += 12 + length
    return kinds


def test_ascii_text_is_written_as_text_other_tools_read_and_the_rest_as_utf8(tmp_path):
    metadata = {"parameters": "a lighthouse\nSteps: 3, Seed: 1", "easel": '{"prompt": "phare \u00e0 minuit \u2728"}'}
    save_png(Image.new("RGB", (4, 4)), tmp_path / "a.png", metadata)
    data = (tmp_path / "a.png").read_bytes()
    assert (b"tEXt", b"parameters") in chunk_kinds(data) and (b"iTXt", b"easel") in chunk_kinds(data)
    assert read_png_text(data, max_bytes=10_000) == metadata == read_png_metadata(tmp_path / "a.png")


def test_read_png_text_checks_size_and_format_and_decodes_no_pixels():
    with pytest.raises(ImageRejected, match="limit is"):
        read_png_text(b"\0" * 2000, max_bytes=1000)
    with pytest.raises(ImageRejected, match="not a PNG"):
        read_png_text(encoded(Image.new("RGB", (8, 8)), "WEBP"), max_bytes=10_000)
    with pytest.raises(ImageRejected, match="too many pixels"):
        read_png_text(png_header_claiming(100_000, 100_000), max_bytes=10_000)
    assert read_png_text(png_header_claiming(300, 300), max_bytes=10_000) == {}  # its pixels are never read
    data = encoded(Image.new("RGB", (8, 8)), "PNG")
    with pytest.raises(ImageRejected, match="truncated"):
        read_png_text(data[:-6], max_bytes=10_000)


def test_upload_encoding_keeps_the_recipe_chunks():
    metadata = {"easel": '{"technique": "cppn", "seed": 3}', "parameters": "Steps: 1, Seed: 3"}
    small = Image.new("RGB", (32, 32), (10, 20, 30))
    data, extension = encode_for_upload(small, 10_000, metadata=metadata)
    assert extension == "png" and read_png_text(data, max_bytes=10_000) == metadata

    noise = Image.effect_noise((600, 600), 80).convert("RGB")
    full = len(encoded(noise, "PNG"))
    data, extension = encode_for_upload(noise, full // 2, metadata=metadata)
    assert extension == "png" and len(data) <= full // 2  # shrunk, still a PNG with its recipe
    assert MIN_RECIPE_SIDE <= Image.open(io.BytesIO(data)).width < 600
    assert read_png_text(data, max_bytes=full) == metadata

    data, extension = encode_for_upload(noise, 8_000, metadata=metadata)  # not even at the smallest PNG
    assert len(data) <= 8_000 and extension in ("webp", "jpg")


def test_safe_filename():
    assert safe_filename("Easel 42 / FINAL!!") == "easel-42-final"
    assert safe_filename("../../etc/passwd") == "etc-passwd"
    assert safe_filename("\u2728") == "easel"
    assert len(safe_filename("x" * 500)) <= 64
