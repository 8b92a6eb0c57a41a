"""End-to-end fixtures: the fake Discord and the real Easel bot connected to it."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.client import Easel
from bot.settings import Settings
from tests.discord_fake import FakeDiscord

READY_TIMEOUT = 20.0
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
    fake.assert_no_violations()  # the bot made no request that real Discord would refuse


def bot_settings(fake: FakeDiscord, data_dir: Path, **overrides: object) -> Settings:
    """Settings for a bot talking to the fake, with tiny random models and its data in `data_dir`."""
    values: dict[str, object] = {
        "discord_token": fake.token,
        "discord_api_base": fake.api_base,
        "discord_gateway_url": fake.gateway_url,
        "data_dir": data_dir,
        "device": "cpu",
        "clip_model": "easel-tiny",
        "clip_pretrained": "none",
        "vgg_weights": "none",
    }
    return Settings(_env_file=None, **(values | overrides))  # type: ignore[call-arg]


class RunningBot:
    """Starts Easel against the fake and stops it again; several starts may share one data folder."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bot: Easel | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, **options: object) -> Easel:
        self.bot = Easel(self.settings, guild_ready_timeout=0.05, **options)  # type: ignore[arg-type]
        assert self.settings.discord_token is not None
        self._task = asyncio.create_task(self.bot.start(self.settings.discord_token.get_secret_value()))
        ready = asyncio.create_task(self.bot.wait_until_ready())
        done, _ = await asyncio.wait({ready, self._task}, timeout=READY_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            self._task.result()  # the bot stopped: raise its error
        assert ready in done, "the bot did not become ready"
        return self.bot

    async def stop(self) -> None:
        if self.bot is not None:
            await self.bot.close()
        if self._task is not None:
            await asyncio.wait_for(self._task, READY_TIMEOUT)
        self.bot, self._task = None, None


@pytest.fixture
async def easel(fake: FakeDiscord, tmp_path: Path) -> AsyncIterator[RunningBot]:
    running = RunningBot(bot_settings(fake, tmp_path))
    yield running
    await running.stop()


async def start_bot_process(fake: FakeDiscord, data_dir: Path, **settings: str) -> asyncio.subprocess.Process:
    """`python -m bot run` as a real process pointed at the fake; returns once its commands are registered."""
    env = {
        **os.environ, "PYTHONPATH": str(PROJECT_ROOT), "DISCORD_TOKEN": fake.token,
        "DISCORD_API_BASE": fake.api_base, "DISCORD_GATEWAY_URL": fake.gateway_url, "DATA_DIR": str(data_dir),
        "DEVICE": "cpu", "CLIP_MODEL": "easel-tiny", "CLIP_PRETRAINED": "none", "VGG_WEIGHTS": "none",
        **settings,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=data_dir, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await fake.wait_until(lambda: any(c["name"] == "about" for c in fake.registered_commands()), timeout=60)
        await fake.wait_until(lambda: fake.gateway_handshakes, timeout=30)
        await wait_until_answering(fake)
    except BaseException:
        process.kill()
        await process.wait()
        raise
    return process


async def wait_until_answering(fake: FakeDiscord, within: float = 30.0) -> None:
    """Sends /about until the bot answers one: then it is connected and has the guild."""
    probe = fake.add_member("probe")
    deadline = asyncio.get_running_loop().time() + within
    while True:
        interaction = await fake.send_command(probe, "about")
        try:
            await fake.wait_for_response(interaction, timeout=1.0)
            return
        except TimeoutError:
            if asyncio.get_running_loop().time() > deadline:
                raise


async def stop_bot_process(process: asyncio.subprocess.Process) -> None:
    """Kills the process if a test left it running (a test that checks shutdown sends its own signal)."""
    if process.returncode is None:
        process.kill()
        await process.wait()
