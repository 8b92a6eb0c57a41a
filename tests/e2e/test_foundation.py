"""The foundation end to end: the real bot against the fake Discord."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from pathlib import Path

import discord

from tests.discord_fake import FakeDiscord
from tests.e2e.conftest import PROJECT_ROOT, RunningBot, start_bot_process, stop_bot_process

EPHEMERAL = 64
DEFERRED = 5


async def test_about_is_deferred_in_time_and_answers(fake: FakeDiscord, easel: RunningBot):
    await easel.start()
    user = fake.add_member("student")
    interaction = await fake.send_command(user, "about")
    first = await fake.wait_for_response(interaction, timeout=3.0)
    assert first.at - interaction.dispatched_at < 3.0
    assert first.type == DEFERRED and first.data["flags"] & EPHEMERAL
    await fake.wait_until(lambda: interaction.original is not None and interaction.original.embeds)
    fields = {field["name"]: field["value"] for field in interaction.original.embeds[0]["fields"]}
    assert fields["Workers (1)"] == f"**{socket.gethostname()}** · cpu · idle"
    assert fields["Queue"] == "0 jobs waiting"
    assert fields["Running"] == "nothing"
    assert "CLIP easel-tiny (random weights)" in fields["Models"]
    assert {"Version", "Uptime"} <= set(fields)


async def test_commands_are_registered_once_across_restarts(fake: FakeDiscord, easel: RunningBot):
    await easel.start()
    names = {command["name"] for command in fake.registered_commands()}
    assert {"about", "easel"} <= names
    await easel.stop()
    await easel.start()
    assert fake.registration_count == 1


async def test_config_from_a_non_host_is_refused_ephemerally(fake: FakeDiscord, easel: RunningBot):
    await easel.start()
    student = fake.add_member("student")
    role = fake.add_role("mentors")
    interaction = await fake.send_command(student, "easel", {"host_role": role}, subcommand=["config"])
    response = await fake.wait_for_response(interaction)
    assert response.type == 4 and response.data["flags"] & EPHEMERAL
    assert "Only hosts can do this" in response.data["content"]
    assert "Manage Server" in response.data["content"]
    assert (await easel.bot.guild_service.get(fake.guild_id)).host_role_id is None


async def test_config_from_a_host_is_stored_and_survives_a_restart(fake: FakeDiscord, easel: RunningBot):
    await easel.start()
    host = fake.add_member("teacher", permissions=discord.Permissions(manage_guild=True).value)
    role = fake.add_role("mentors")
    interaction = await fake.send_command(host, "easel", {"host_role": role, "workshop_channel": fake.channel_id},
                                          subcommand=["config"])
    await fake.wait_until(lambda: interaction.original is not None and "Saved." in interaction.original.content)
    await easel.stop()

    await easel.start()  # same database file
    mentor = fake.add_member("mentor", roles=[role])
    interaction = await fake.send_command(mentor, "easel", subcommand=["config"])
    await fake.wait_until(lambda: interaction.original is not None and interaction.original.content)
    assert "Current settings." in interaction.original.content
    assert f"<@&{role}>" in interaction.original.content
    assert f"<#{fake.channel_id}>" in interaction.original.content


async def test_a_broken_cog_is_logged_and_the_others_load(fake: FakeDiscord, easel: RunningBot, caplog):
    with caplog.at_level(logging.ERROR):
        bot = await easel.start(cogs=("cogs.does_not_exist", "cogs.admin"))
    assert "cogs.does_not_exist failed to load" in caplog.text
    assert bot.tree.get_command("about") is not None


async def test_the_bot_process_connects_registers_and_answers_about(fake: FakeDiscord, tmp_path: Path):
    process = await start_bot_process(fake, tmp_path)
    try:
        interaction = await fake.send_command(fake.add_member("student"), "about")
        first = await fake.wait_for_response(interaction, timeout=10)
        assert first.at - interaction.dispatched_at < 3.0
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        await stop_bot_process(process)
    log_file = tmp_path / "logs" / "easel.log"
    assert log_file.exists() and fake.token not in log_file.read_text()


async def test_sync_registers_the_commands_to_a_guild_now(fake: FakeDiscord, tmp_path: Path):
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "DISCORD_TOKEN": fake.token, "DATA_DIR": str(tmp_path),
           "DISCORD_API_BASE": fake.api_base, "DISCORD_GATEWAY_URL": fake.gateway_url, "DEVICE": "cpu"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "sync", "--guild", str(fake.guild_id), cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0
    assert f"guild {fake.guild_id}" in output.decode()
    assert {"about", "imagine", "easel"} <= {c["name"] for c in fake.registered_commands(fake.guild_id)}
    assert fake.registered_commands() == []  # nothing global


async def test_commands_are_registered_again_when_they_change(fake: FakeDiscord, easel: RunningBot):
    await easel.start(cogs=("cogs.admin",))
    assert "imagine" not in {command["name"] for command in fake.registered_commands()}
    await easel.stop()
    await easel.start()  # a new version brings more commands
    assert fake.registration_count == 2
    assert {"about", "imagine"} <= {command["name"] for command in fake.registered_commands()}
