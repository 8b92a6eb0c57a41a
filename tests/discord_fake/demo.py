"""Watch a workshop job without a Discord account: the real bot, the fake Discord, a transcript.

    python -m tests.discord_fake.demo "a lighthouse in a storm | fog:0.5" --steps 60
    python -m tests.discord_fake.demo --technique cppn --flags "--size 256 --steps 40"

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
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.discord_fake import FakeDiscord, FakeMessage
from tests.e2e.conftest import RunningBot, bot_settings


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
        try:
            await running.start()
            student = fake.add_member("student")
            if args.technique == "imagine":
                options = {"prompt": f"{args.prompt} {args.flags}".strip(), "steps": args.steps}
            else:
                options = {"flags": args.flags or None, "steps": args.steps}
            print(f"> /{args.technique} {options}")
            interaction = await fake.send_command(student, args.technique, options)
            await fake.wait_until(lambda: interaction.original is not None and interaction.original.content, 30)
            print(f"[only you can see this] {interaction.original.content}")
            await watch_thread(fake, running, args.out)
        finally:
            await running.stop()
            await fake.stop()
    return 0


async def watch_thread(fake: FakeDiscord, running: RunningBot, out: Path) -> None:
    """Prints each new message and each status edit until the result is posted, then saves its files."""
    await fake.wait_until(lambda: fake.threads, 30)
    thread = next(iter(fake.threads.values()))
    print(f"[thread] {thread.name}")
    seen: dict[int, int] = {}
    while True:
        for message in fake.messages(thread.id):
            if seen.get(message.id) != message.edits:
                seen[message.id] = message.edits
                print(f"  {'(edited) ' if message.edits else ''}{describe(message)}")
                if any("easel:reroll" in custom_id for custom_id in message.custom_ids()):
                    save_attachments(message, out)
                    return
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
    return asyncio.run(demo(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
