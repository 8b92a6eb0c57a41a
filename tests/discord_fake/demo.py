"""Watch a workshop job without a Discord account: the real bot, the fake Discord, a transcript.

    python -m tests.discord_fake.demo "a lighthouse in a storm | fog:0.5" --steps 60
    python -m tests.discord_fake.demo --technique cppn --flags "--size 256 --steps 40"
    python -m tests.discord_fake.demo --lesson 6
    python -m tests.discord_fake.demo --challenge

With --lesson N it runs a whole lesson of the shipped course instead: a host opens it, a student
presses Try it on its first exercise, submits the result and is reviewed, sees their progress and
the class gallery, and a classmate re-runs the result from its PNG with /recipe.

With --challenge it runs a speed-round challenge from creation to winners: a host creates it, three
students make CPPN patterns and enter them blind, voting opens with a contact sheet and numbered
entries, everyone votes, the results and the leaderboard follow. The bot's clock is moved forward
past each deadline instead of waiting for it.

It starts the fake Discord and Easel against it (tiny random CLIP unless CLIP_MODEL and
CLIP_PRETRAINED say otherwise), sends the slash command as a student, prints what appears in the
job's thread as it happens, and saves the posted files to --out.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import discord

from models.base import utcnow
from tests.discord_fake import FakeDiscord, FakeInteraction, FakeMessage, FakeUser
from tests.e2e.conftest import RunningBot, bot_settings

HOST_PERMISSIONS = discord.Permissions(manage_guild=True).value


class DemoClock:
    """The bot's clock in the challenge demo: real time plus the deadlines the demo skips over."""

    def __init__(self) -> None:
        self.skipped = timedelta()

    def __call__(self):
        return utcnow() + self.skipped


def describe(message: FakeMessage) -> str:
    parts = [message.content] if message.content else []
    for embed in message.embeds:
        parts.append(" | ".join(filter(None, [embed.get("title"), embed.get("description")])))
    if message.attachments:
        parts.append("files: " + ", ".join(attachment.filename for attachment in message.attachments))
    return " · ".join(part.replace("\n", " ") for part in parts)


async def demo(args: argparse.Namespace) -> int:
    fake = FakeDiscord()
    await fake.start()
    overrides = {"status_edit_seconds": 1.0, "progress_every": max(1, args.steps // 20)}
    for name in ("clip_model", "clip_pretrained", "vgg_weights"):
        if os.environ.get(name.upper()):
            overrides[name] = os.environ[name.upper()]
    with tempfile.TemporaryDirectory() as data_dir:
        running = RunningBot(bot_settings(fake, Path(data_dir), **overrides))
        clock = DemoClock()
        try:
            await running.start(clock=clock)
            if args.challenge:
                await run_challenge(fake, running, clock, args.out)
                return 0
            if args.lesson is not None:
                await run_lesson(fake, args.lesson, args.out)
                return 0
            student = fake.add_member("student")
            if args.technique == "imagine":
                options = {"prompt": f"{args.prompt} {args.flags}".strip(), "steps": args.steps}
            else:
                options = {"flags": args.flags or None, "steps": args.steps}
            print(f"> /{args.technique} {options}")
            interaction = await fake.send_command(student, args.technique, options)
            await fake.wait_until(lambda: interaction.original is not None and interaction.original.content, 30)
            print(f"[only you can see this] {interaction.original.content}")
            await fake.wait_until(lambda: fake.threads, 30)
            await watch_thread(fake, next(iter(fake.threads)), args.out)
        finally:
            await running.stop()
            await fake.stop()
    return 0


async def act(fake: FakeDiscord, who: FakeUser, what: str, interaction: FakeInteraction) -> FakeMessage:
    reply = await fake.answer(interaction, 60)
    print(f"\n> {who.name}: {what}")
    print(f"{'[only you can see this] ' if reply.ephemeral else ''}{describe(reply)}")
    return reply


async def run_lesson(fake: FakeDiscord, number: int, out: Path) -> None:
    """A whole lesson as a new user would live it, printed as a transcript."""
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    student, classmate = fake.add_member("student"), fake.add_member("classmate")
    await act(fake, host, f"/lesson start {number}",
              await fake.send_command(host, "lesson", {"number": number}, subcommand=["start"]))
    announcement = fake.messages(fake.channel_id)[-1]
    print(f"[#workshop] {describe(announcement)}")
    lesson_thread = next(iter(fake.threads))
    for message in fake.messages(lesson_thread):
        print(f"[lesson thread] {message.content}")
    try_first = next(custom_id for custom_id in announcement.custom_ids() if custom_id.startswith("easel:try:"))
    receipt = await act(fake, student, "presses Try it", await fake.press_button(student, announcement, try_first))
    job_id = int(receipt.content.split("Queued job #")[1].split(".")[0])
    await fake.wait_until(lambda: len(fake.threads) > 1, 30)
    final = await watch_thread(fake, list(fake.threads)[-1], out)
    exercise = try_first.removeprefix("easel:try:")
    await act(fake, student, f"/submit exercise:{exercise} job:{job_id} note:my first try",
              await fake.send_command(student, "submit", {"exercise": exercise, "job": job_id, "note": "my first try"}))
    listing = await act(fake, host, "/review queue", await fake.send_command(host, "review", subcommand=["queue"]))
    approve = next(custom_id for custom_id in listing.custom_ids() if custom_id.startswith("easel:approve:"))
    await act(fake, host, "presses Approve", await fake.press_button(host, listing, approve))
    print(f"[DM to student] {fake.messages(fake.dm_channel(student))[-1].content}")
    await act(fake, student, "/progress member", await fake.send_command(student, "progress", subcommand=["member"]))
    gallery = await act(fake, classmate, f"/gallery lesson:{number}",
                        await fake.send_command(classmate, "gallery", {"lesson": number}))
    save_attachments(gallery, out)
    png = final.attachments[0]
    recipe = await act(fake, classmate, "/recipe with the student's PNG",
                       await fake.send_command(classmate, "recipe",
                                               attachments={"image": (png.filename, png.data, "image/png")}))
    await act(fake, classmate, "presses Run it again", await fake.press_button(classmate, recipe, "easel:recipe:run"))
    await fake.wait_until(lambda: len(fake.threads) > 2, 30)
    await watch_thread(fake, list(fake.threads)[-1], out / "classmate")


async def run_challenge(fake: FakeDiscord, running: RunningBot, clock: DemoClock, out: Path) -> None:
    """A speed-round challenge from creation to winners, printed as a transcript."""
    bot = running.bot
    assert bot is not None
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    students = [fake.add_member(name) for name in ("ada", "bo", "cy")]
    created = await act(fake, host, "/challenge create (a two-minute speed round, CPPN only)", await fake.send_command(
        host, "challenge", {"title": "Tartan from coordinates", "theme": "A pattern you would wear.",
                            "entries_close": "in 2 minutes", "voting_closes": "in 4 minutes", "techniques": "cppn"},
        subcommand=["create"]))
    challenge_id = int(created.content.split("#")[1].split(" ")[0])
    print(f"[#workshop] {describe(fake.messages(fake.channel_id)[-1])}")
    for seed, student in enumerate(students, start=1):
        run = await act(fake, student, f"/cppn seed:{seed}", await fake.send_command(
            student, "cppn", {"seed": seed, "flags": "--size 96 --steps 30"}))
        job_id = int(run.content.split("Queued job #")[1].split(".")[0])
        await fake.wait_until(lambda job_id=job_id: job_done(fake, job_id), 120)
        await act(fake, student, f"/challenge enter job:{job_id}", await fake.send_command(
            student, "challenge", {"challenge": challenge_id, "job": job_id, "title": f"Weave {seed}"},
            subcommand=["enter"]))
    await act(fake, students[0], "/challenge list", await fake.send_command(students[0], "challenge",
                                                                             subcommand=["list"]))

    clock.skipped += timedelta(minutes=2, seconds=5)
    print("\n... two minutes later, the sweeper opens the vote ...")
    await bot.challenge_desk.sweep()
    thread_id = (await bot.challenges.get(challenge_id, fake.guild_id)).thread_id
    posts = [message for message in fake.messages(thread_id) if message.custom_ids() or message.attachments]
    for message in posts:
        print(f"[challenge thread] {describe(message)}")
    save_attachments(posts[0], out / "challenge")
    ballots = [message for message in posts if message.custom_ids()]
    for voter, ballot in zip([*students, host], [ballots[1], ballots[2], ballots[0], ballots[1]], strict=True):
        await act(fake, voter, f"votes for {ballot.content}", await fake.press_button(voter, ballot,
                                                                                      ballot.custom_ids()[0]))

    clock.skipped += timedelta(minutes=2)
    print("\n... two minutes later, voting closes ...")
    await bot.challenge_desk.sweep()
    results = fake.messages(thread_id)[-1]
    print(f"[challenge thread] {describe(results)}")
    save_attachments(results, out / "challenge")
    await act(fake, students[1], "/leaderboard", await fake.send_command(students[1], "leaderboard"))


def job_done(fake: FakeDiscord, job_id: int) -> bool:
    return any(any(f"easel:reroll:{job_id}" == custom_id for custom_id in message.custom_ids())
               for thread in fake.threads for message in fake.messages(thread))


async def watch_thread(fake: FakeDiscord, thread_id: int, out: Path) -> FakeMessage:
    """Prints each new message and each status edit until the result is posted, then saves its files."""
    thread = fake.threads[thread_id]
    print(f"[thread] {thread.name}")
    seen: dict[int, int] = {}
    while True:
        for message in fake.messages(thread.id):
            if seen.get(message.id) != message.edits:
                seen[message.id] = message.edits
                print(f"  {'(edited) ' if message.edits else ''}{describe(message)}")
                if any("easel:reroll" in custom_id for custom_id in message.custom_ids()):
                    save_attachments(message, out)
                    return message
        await asyncio.sleep(0.2)


def save_attachments(message: FakeMessage, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for attachment in message.attachments:
        (out / attachment.filename).write_bytes(attachment.data)
    print(f"saved {len(message.attachments)} files to {out}/")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prompt", nargs="?", default="a lighthouse in a storm | fog:0.5")
    parser.add_argument("--technique", default="imagine", choices=["imagine", "cppn"])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--flags", default="--size 128 --cutn 8", help="inline flags added to the command")
    parser.add_argument("--out", type=Path, default=Path("out/demo"))
    parser.add_argument("--lesson", type=int, help="run this lesson of the shipped course, start to finish")
    parser.add_argument("--challenge", action="store_true", help="run a speed-round challenge, start to finish")
    return asyncio.run(demo(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
