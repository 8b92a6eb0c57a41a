"""Pictures written inside a transaction: kept when it commits, removed when it fails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from bot.artwork import STORED_SIDE, picture_writes


async def test_a_committed_picture_stays_small_and_named_by_its_row(tmp_path: Path):
    async with picture_writes(tmp_path) as pictures:
        path = await pictures.write(Image.new("RGB", (3000, 1500), (10, 20, 30)), 7)
    assert path == str(tmp_path / "7.webp")
    with Image.open(path) as stored:
        assert stored.format == "WEBP" and stored.size == (STORED_SIDE, STORED_SIDE // 2)
    assert os.listdir(tmp_path) == ["7.webp"]  # nothing half-written left beside it


async def test_pictures_of_a_failed_transaction_are_removed(tmp_path: Path):
    with pytest.raises(RuntimeError):
        async with picture_writes(tmp_path) as pictures:
            await pictures.write(Image.new("RGB", (8, 8)), 1)
            await pictures.write(Image.new("RGB", (8, 8)), 2)
            raise RuntimeError("the commit failed")
    assert os.listdir(tmp_path) == []
