"""Images people attach: checked in memory first, then kept under DATA_DIR/uploads by content hash.

A request is validated between `check` and `store`, so a refused request leaves no file behind.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from bot.art.imagefiles import load_image_bytes

# Formats kept as the sender's own bytes (a single frame only), with their file extension.
KEPT_AS_SENT = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}


@dataclass(frozen=True)
class CheckedUpload:
    """An upload that passed the checks: the bytes to store and their extension (no dot)."""

    data: bytes
    extension: str


class UploadStore:
    def __init__(self, folder: Path, *, max_bytes: int, max_pixels: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels

    def check(self, data: bytes) -> CheckedUpload:
        """Decodes and checks an upload in memory (raises ImageRejected with a message for its sender).

        A single-frame PNG, JPEG or WebP is kept as sent, the smallest faithful copy; anything else
        (a GIF, an animation) becomes a PNG of the first frame, which is all a technique reads.
        """
        image = load_image_bytes(data, max_bytes=self.max_bytes, max_pixels=self.max_pixels)
        with Image.open(io.BytesIO(data)) as original:  # the header again: load_image_bytes returns a converted copy
            extension = KEPT_AS_SENT.get(original.format or "")
            animated = getattr(original, "is_animated", False)
        if extension is not None and not animated:
            return CheckedUpload(data, extension)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return CheckedUpload(buffer.getvalue(), "png")

    def store(self, checked: CheckedUpload) -> Path:
        """Writes a checked upload, named by the hash of its bytes: never by anything the sender chose.

        The same bytes stored twice give one file. Storing refreshes its time, which the retention
        sweep's grace period reads: a file being submitted right now is never pruned.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{hashlib.sha256(checked.data).hexdigest()[:24]}.{checked.extension}"
        try:
            os.utime(path)  # already stored
            return path
        except FileNotFoundError:
            pass
        # Written aside and renamed, so no one reads a half-written file; a stray .part is pruned as an orphan.
        with tempfile.NamedTemporaryFile(dir=self.folder, suffix=".part", delete=False) as part:
            part.write(checked.data)
        os.replace(part.name, path)
        return path
