"""Images people attach: checked, normalised to PNG and kept under DATA_DIR/uploads by content hash."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from bot.art.imagefiles import load_image_bytes


class UploadStore:
    def __init__(self, folder: Path, *, max_bytes: int, max_pixels: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels

    def save(self, data: bytes) -> Path:
        """Checks an upload (raises ImageRejected with a message for its sender) and stores it as PNG.

        The file is named by the hash of its bytes: never by anything the sender chose.
        """
        image = load_image_bytes(data, max_bytes=self.max_bytes, max_pixels=self.max_pixels)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        png = buffer.getvalue()
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{hashlib.sha256(png).hexdigest()[:24]}.png"
        if not path.exists():
            path.write_bytes(png)
        return path
