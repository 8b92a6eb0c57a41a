"""Retention end to end: /about shows hosts the data folder's size, and the daily sweep runs with the bot."""

from __future__ import annotations

import logging
import os
import re
import time

from tests.discord_fake import FakeDiscord
from tests.e2e.conftest import RunningBot


async def about_fields(fake: FakeDiscord, user) -> dict[str, str]:
    interaction = await fake.send_command(user, "about")
    await fake.wait_until(lambda: interaction.original is not None and interaction.original.embeds)
    return {field["name"]: field["value"] for field in interaction.original.embeds[0]["fields"]}


async def test_about_shows_the_data_folder_size_to_hosts_only(fake: FakeDiscord, easel: RunningBot):
    uploads = easel.settings.data_dir / "uploads"
    uploads.mkdir(parents=True)
    (uploads / "a.png").write_bytes(b"x" * 2500)
    bot = await easel.start()
    assert bot.sweep_data.is_running()

    fields = await about_fields(fake, fake.owner)
    size = r"[\d.]+ [kMG]?B"
    assert re.fullmatch(rf"{size} in all: uploads 2\.5 kB, results 0 B, database {size}", fields["Data folder"])
    (uploads / "b.png").write_bytes(b"x" * 2500)
    assert (await about_fields(fake, fake.owner))["Data folder"] == fields["Data folder"]  # measured once a minute

    assert "Data folder" not in await about_fields(fake, fake.add_member("student"))

    await easel.stop()
    assert not bot.sweep_data.is_running()


async def test_the_sweep_logs_what_it_removed_and_an_error_never_stops_the_bot(
        fake: FakeDiscord, easel: RunningBot, monkeypatch, caplog):
    orphan = easel.settings.data_dir / "uploads" / "orphan.png"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    os.utime(orphan, (two_hours_ago, two_hours_ago))
    bot = await easel.start()

    with caplog.at_level(logging.INFO, logger="bot.client"):
        await bot.sweep_data()  # one run of the daily loop's body
    assert not orphan.exists()
    assert f"removed the upload {orphan}" in caplog.text and "1 upload (1 B)" in caplog.text

    async def broken(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr("bot.client.prune", broken)
    caplog.clear()
    await bot.sweep_data()
    assert "clean-up of old results and uploads failed" in caplog.text
    assert bot.sweep_data.is_running() and "Data folder" in await about_fields(fake, fake.owner)
