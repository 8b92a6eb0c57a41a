import hashlib
import io
import os
import time
from pathlib import Path

import pytest
from PIL import Image

from bot.art.imagefiles import ImageRejected
from bot.jobs.uploads import UploadStore


@pytest.fixture
def store(tmp_path: Path) -> UploadStore:
    return UploadStore(tmp_path / "uploads", max_bytes=200_000, max_pixels=100_000)


def image_bytes(format: str, size=(32, 24), **options) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise(size, 40).convert("RGB").save(buffer, format=format, **options)
    return buffer.getvalue()


def flat_png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size).save(buffer, format="PNG")
    return buffer.getvalue()


def gif_bytes(frames: int = 1) -> bytes:
    images = [Image.new("RGB", (20, 20), colour) for colour in ("red", "blue", "green")[:frames]]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:])
    return buffer.getvalue()


@pytest.mark.parametrize("data, message", [
    (b"not an image at all", "PNG, JPEG, WebP or GIF"),
    (flat_png((400, 300)), "pixels"),  # 120,000 pixels: over the limit
    (b"\x89PNG" + bytes(250_000), "limit is"),
    (image_bytes("PNG", (64, 64))[:1500], "damaged"),
])
def test_a_refused_upload_writes_nothing(store: UploadStore, data: bytes, message: str):
    with pytest.raises(ImageRejected, match=message):
        store.check(data)
    assert not store.folder.exists()


def test_check_alone_writes_nothing(store: UploadStore):
    store.check(image_bytes("JPEG"))
    assert not store.folder.exists()


@pytest.mark.parametrize("format, extension", [("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp")])
def test_a_valid_png_jpeg_or_webp_is_stored_as_sent(store: UploadStore, format: str, extension: str):
    data = image_bytes(format)
    path = store.store(store.check(data))
    assert path.read_bytes() == data
    assert path.parent == store.folder and path.suffix == f".{extension}"
    assert path.stem == hashlib.sha256(data).hexdigest()[:24]


@pytest.mark.parametrize("data", [gif_bytes(), gif_bytes(frames=3)])
def test_a_gif_becomes_a_png_of_its_first_frame(store: UploadStore, data: bytes):
    path = store.store(store.check(data))
    assert path.suffix == ".png" and path.stem == hashlib.sha256(path.read_bytes()).hexdigest()[:24]
    with Image.open(path) as stored:
        assert stored.format == "PNG" and stored.convert("RGB").getpixel((5, 5)) == (255, 0, 0)


def test_an_animated_webp_becomes_a_png(store: UploadStore):
    frames = [Image.new("RGB", (20, 20), colour) for colour in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="WEBP", save_all=True, append_images=frames[1:], lossless=True)
    path = store.store(store.check(buffer.getvalue()))
    assert path.suffix == ".png"


def test_the_same_bytes_stored_twice_give_one_file_and_a_fresh_time(store: UploadStore):
    data = image_bytes("JPEG")
    first = store.store(store.check(data))
    hours_ago = time.time() - 7200
    os.utime(first, (hours_ago, hours_ago))
    second = store.store(store.check(data))
    assert first == second and [p.name for p in store.folder.iterdir()] == [first.name]
    assert first.stat().st_mtime > hours_ago + 3600  # the retention sweep's grace period starts again
