"""Challenge voting under load: 200 members vote within a few seconds on a challenge with 50 entries.

One process, the fake Discord (tests/discord_fake) and the real Easel bot with a clock the benchmark moves.
Prints the time from a vote button's press to the bot's acknowledgement (p50, p99) and the votes lost,
next to a baseline measured in the same process: a bare discord.py bot whose button only answers.
Nothing is asserted.

    HF_HUB_OFFLINE=1 python bench/bench_challenge.py [--voters 200 --entries 50 --spread 2.0]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import io
import logging
import os
import random
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import discord
from discord.ext import commands
from PIL import Image
from sqlalchemy import func, select

from bench.figures import figure, percentile
from bot.client import Easel
from bot.endpoints import configure_discord_endpoints
from models import ChallengeVote
from tests.clock import Clock
from tests.discord_fake import FakeDiscord, FakeMessage
from tests.e2e.conftest import READY_TIMEOUT, RunningBot, bot_settings

HOST_PERMISSIONS = 1 << 5  # Manage Server


def png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (seed * 37 % 256, seed * 91 % 256, seed * 13 % 256)).save(buffer, format="PNG")
    return buffer.getvalue()


async def press_all(fake: FakeDiscord, presses: list[tuple[object, FakeMessage, str]], spread: float) -> list[float]:
    """Each press at a random moment within `spread` seconds; returns click-to-acknowledgement times in ms."""
    latencies: list[float] = []

    async def press(user, message: FakeMessage, custom_id: str) -> None:
        await asyncio.sleep(random.uniform(0, spread))
        interaction = await fake.press_button(user, message, custom_id)
        response = await fake.wait_for_response(interaction, timeout=30.0)
        latencies.append((response.at - interaction.dispatched_at) * 1000)

    await asyncio.gather(*(press(*item) for item in presses))
    return latencies


class BareBot(commands.Bot):
    """The baseline: discord.py with one persistent button that only answers, ephemerally."""

    def __init__(self) -> None:
        super().__init__(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.05)
        self.button_view = discord.ui.View(timeout=None)
        button = discord.ui.Button(label="Vote", custom_id="bare:vote")

        async def answer(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("You voted.", ephemeral=True)

        button.callback = answer
        self.button_view.add_item(button)

    async def setup_hook(self) -> None:
        self.add_view(self.button_view)


async def bench_bare(fake: FakeDiscord, voters: list, spread: float) -> list[float]:
    configure_discord_endpoints(fake.api_base, fake.gateway_url)
    bare = BareBot()
    task = asyncio.create_task(bare.start(fake.token))
    await asyncio.wait_for(bare.wait_until_ready(), READY_TIMEOUT)
    sent = await bare.get_partial_messageable(fake.channel_id).send("Vote here", view=bare.button_view)
    message = next(m for m in fake.messages(fake.channel_id) if m.id == sent.id)
    await press_all(fake, [(voters[0], message, "bare:vote")], 0)  # warm-up
    latencies = await press_all(fake, [(voter, message, "bare:vote") for voter in voters], spread)
    await bare.close()
    await task
    return latencies


async def prepare_challenge(fake: FakeDiscord, bot: Easel, clock: Clock, entries: int) -> dict[int, FakeMessage]:
    """A challenge with `entries` entries by as many members, voting open; returns entry id -> its post."""
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    created = await fake.answer(await fake.send_command(host, "challenge", {
        "title": "Bench", "theme": "Anything", "entries_close": "in 1 day", "voting_closes": "in 2 days"},
        subcommand=["create"]))
    challenge_id = int(created.content.split("#")[1].split(" ")[0])
    for index in range(entries):
        author = fake.add_member(f"author-{index}")
        reply = await fake.answer(await fake.send_command(
            author, "challenge", {"challenge": challenge_id}, subcommand=["enter"],
            attachments={"image": ("entry.png", png(index), "image/png")}))
        if "is in" not in reply.content:
            raise RuntimeError(f"an entry was refused: {reply.content!r}")
    clock.advance(days=1, minutes=1)
    await bot.challenge_desk.sweep()
    thread_id = (await bot.challenges.get(challenge_id, fake.guild_id)).thread_id
    posts = {}
    for message in fake.messages(thread_id):
        for custom_id in message.custom_ids():
            if custom_id.startswith("easel:vote:"):
                posts[int(custom_id.rsplit(":", 1)[1])] = message
    if len(posts) != entries:
        raise RuntimeError(f"{len(posts)} entry posts for {entries} entries")
    return posts


async def main(args: argparse.Namespace) -> None:
    print(f"# bench_challenge: voters={args.voters} entries={args.entries} spread={args.spread}s "
          f"cpus={os.cpu_count()}", flush=True)
    began = time.monotonic()
    random.seed(7)
    with tempfile.TemporaryDirectory(prefix="easel-bench-") as folder:
        fake = FakeDiscord()
        await fake.start()
        try:
            voters = [fake.add_member(f"voter-{index}") for index in range(args.voters)]
            print("# baseline: a bare discord.py bot whose button only answers")
            bare = await bench_bare(fake, voters, args.spread)

            clock = Clock()
            running = RunningBot(bot_settings(fake, Path(folder), max_challenge_entries=max(args.entries, 2)))
            bot = await running.start(clock=clock)
            try:
                started = time.monotonic()
                posts = await prepare_challenge(fake, bot, clock, args.entries)
                figure("prepare_seconds", time.monotonic() - started)
                entry_ids = sorted(posts)
                presses = [(voter, posts[entry_ids[index % len(entry_ids)]],
                            f"easel:vote:{entry_ids[index % len(entry_ids)]}") for index, voter in enumerate(voters)]
                print(f"# easel: {args.voters} votes within {args.spread}s on {args.entries} entries")
                latencies = await press_all(fake, presses, args.spread)
                async with bot.sessions() as session:
                    counted = await session.scalar(select(func.count()).select_from(ChallengeVote))
            finally:
                await running.stop()
        finally:
            await fake.stop()

    figure("bare_ack_p50_ms", percentile(bare, 0.50))
    figure("bare_ack_p99_ms", percentile(bare, 0.99))
    figure("vote_ack_p50_ms", percentile(latencies, 0.50))
    figure("vote_ack_max_ms", max(latencies))
    figure("vote_ack_p99_ratio_vs_bare", percentile(latencies, 0.99) / percentile(bare, 0.99))
    figure("votes_counted", counted)
    figure("votes_lost", args.voters - (counted or 0))
    figure("total_seconds", time.monotonic() - began)
    figure("vote_ack_p99_ms", percentile(latencies, 0.99))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voters", type=int, default=200)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--spread", type=float, default=2.0, help="seconds over which the votes arrive")
    return parser.parse_args()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for quiet in ("discord.client", "discord.ext.commands.bot"):
        logging.getLogger(quiet).setLevel(logging.ERROR)
    asyncio.run(main(parse_args()))
