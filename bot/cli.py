"""Easel's command line: run the bot, manage the database, register commands.

Every subcommand returns an exit code: 0 done, 1 failed, 2 bad settings or arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from typing import TYPE_CHECKING

from pydantic import ValidationError

from bot import __version__
from bot.course_cli import add_course_command
from bot.log import setup_logging
from bot.render_cli import add_render_command
from bot.settings import Settings
from bot.train_cli import add_train_command
from bot.weights_cli import add_weights_command
from bot.worker_cli import add_worker_command

if TYPE_CHECKING:
    from bot.client import Easel

log = logging.getLogger("bot")


def load_settings() -> Settings | None:
    """The settings, or None after printing one line per invalid variable."""
    try:
        return Settings()
    except ValidationError as error:
        for problem in error.errors():
            variable = "_".join(str(part) for part in problem["loc"]).upper()
            given = "<hidden>" if "TOKEN" in variable else problem.get("input")
            message = problem["msg"].removeprefix("Value error, ")
            print(f"Invalid setting {variable}={given!r}: {message}", file=sys.stderr)
        return None


def require_token(settings: Settings) -> str | None:
    if settings.discord_token is None:
        print(
            "DISCORD_TOKEN is not set: put your bot's token in the environment or in .env "
            "(DISCORD_TOKEN=...); see .env.example",
            file=sys.stderr,
        )
        return None
    return settings.discord_token.get_secret_value()


def device_is_usable(settings: Settings) -> bool:
    """Whether DEVICE names a device this machine has; if not, prints why."""
    from bot.art.models import choose_device  # torch, only for the commands that run jobs

    try:
        choose_device(settings.device)
    except ValueError as error:
        print(f"Invalid setting: {error}", file=sys.stderr)
        return False
    return True


def start_logging(settings: Settings) -> None:
    token = settings.discord_token.get_secret_value() if settings.discord_token else ""
    setup_logging(settings.log_level, settings.data_dir / "logs", secrets=[token])


async def run_bot(settings: Settings, token: str, *, run_worker: bool = True) -> None:
    from bot.client import Easel  # discord.py is imported only for commands that talk to Discord

    bot = Easel(settings, run_worker=run_worker)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows has no signal handlers in asyncio
            loop.add_signal_handler(signum, lambda s=signum: _request_shutdown(bot, s))  # type: ignore[misc]
    async with bot:
        await bot.start(token)
    await bot.close()  # the shutdown's last steps (the database's connections) finish before the loop ends
    log.info("Easel stopped")


def _request_shutdown(bot: Easel, signum: int) -> None:
    log.info("received %s: stopping after the current step", signal.Signals(signum).name)
    bot.request_close()


def command_run(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings is None:
        return 2
    token = require_token(settings)
    if token is None or not device_is_usable(settings):
        return 2
    start_logging(settings)
    asyncio.run(run_bot(settings, token, run_worker=args.worker))
    return 0


def command_db(args: argparse.Namespace) -> int:
    from bot import db  # Alembic and SQLAlchemy: a third of a second that `render` and `train` need not wait
    settings = load_settings()
    if settings is None:
        return 2

    async def act() -> None:
        engine = db.create_engine(settings.resolved_database_url)
        try:
            if args.action == "upgrade":
                await db.upgrade(engine, args.revision)
            elif args.action == "downgrade":
                await db.downgrade(engine, args.revision)
            current = await db.current_revision(engine)
            print(f"database at revision {current or 'base (empty)'}; newest is {db.head_revision()}")
        finally:
            await engine.dispose()

    asyncio.run(act())
    return 0


def command_sync(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings is None:
        return 2
    if args.globally:
        settings = settings.model_copy(update={"discord_guild_id": None})
    elif args.guild is not None:
        settings = settings.model_copy(update={"discord_guild_id": args.guild})
    token = require_token(settings)
    if token is None:
        return 2
    start_logging(settings)

    async def act() -> None:
        from bot.client import Easel

        bot = Easel(settings, force_sync=True)
        async with bot:
            await bot.login(token)  # login runs setup_hook, which registers the commands

    asyncio.run(act())
    where = f"guild {settings.discord_guild_id}" if settings.discord_guild_id else "all guilds (global)"
    print(f"registered the slash commands for {where}")
    return 0


def command_data(args: argparse.Namespace) -> int:
    from bot import db
    from bot.retention import data_size, human_size, prune
    settings = load_settings()
    if settings is None:
        return 2
    if args.data_action == "size":
        size = data_size(settings.data_dir, settings.resolved_database_url)
        for part, value in (("uploads", size.uploads), ("results", size.results), ("database", size.database)):
            print(f"{part:<10} {human_size(value):>10}")
        print(f"{'total':<10} {human_size(size.total):>10}  ({settings.data_dir})")
        return 0
    if settings.keep_results_days == 0:
        print("KEEP_RESULTS_DAYS=0: keeping every result and upload; nothing removed")
        return 0

    async def act() -> int:
        engine = db.create_engine(settings.resolved_database_url)
        try:
            if await db.current_revision(engine) != db.head_revision():
                print("The database is not at the newest schema: run `python -m bot db upgrade` first.",
                      file=sys.stderr)
                return 1
            report = await prune(db.create_session_factory(engine), settings.data_dir, settings.keep_results_days)
        finally:
            await engine.dispose()
        for item in report.removed:
            print(f"removed {item.kind:<6} {human_size(item.size_bytes):>10}  {item.path}")
        print(report.summary())
        return 0

    return asyncio.run(act())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Easel, the AI-art workshop bot.")
    parser.add_argument("--version", action="version", version=f"easel {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="connect to Discord and serve the workshop",
                              description="Run the bot. It reads DISCORD_TOKEN from the environment or .env, "
                                          "upgrades the database and registers changed slash commands.")
    run.add_argument("--no-worker", dest="worker", action="store_false",
                     help="run no GPU worker here: `python -m bot worker` runs the jobs on other machines")
    run.set_defaults(func=command_run)

    database = commands.add_parser("db", help="upgrade, downgrade or show the database schema",
                                   description="Manage the database schema with Alembic migrations.")
    actions = database.add_subparsers(dest="action", required=True, metavar="ACTION")
    upgrade = actions.add_parser("upgrade", help="upgrade to the newest schema (or REVISION)")
    upgrade.add_argument("revision", nargs="?", default="head")
    downgrade = actions.add_parser("downgrade", help="downgrade to REVISION (base empties the database)")
    downgrade.add_argument("revision")
    actions.add_parser("current", help="show the database's revision")
    database.set_defaults(func=command_db)

    sync = commands.add_parser("sync", help="register the slash commands now",
                               description="Register the slash commands now: to DISCORD_GUILD_ID (instant) "
                                           "or globally (can take up to an hour to appear).")
    where = sync.add_mutually_exclusive_group()
    where.add_argument("--guild", type=int, help="register to this guild id")
    where.add_argument("--global", dest="globally", action="store_true", help="register globally")
    sync.set_defaults(func=command_sync)

    data = commands.add_parser("data", help="prune old results and uploads, or show the data folder's size",
                               description="Manage DATA_DIR: results of jobs finished more than KEEP_RESULTS_DAYS "
                                           "ago and uploads no live job needs can be removed.")
    data_actions = data.add_subparsers(dest="data_action", required=True, metavar="ACTION")
    data_actions.add_parser("prune", help="remove old results and unneeded uploads now, and list them",
                            description="Remove the results of jobs finished more than KEEP_RESULTS_DAYS ago and "
                                        "the uploads that no queued, running or recent job reads (the bot does "
                                        "this daily). KEEP_RESULTS_DAYS=0 keeps everything.")
    data_actions.add_parser("size", help="show the data folder's size: uploads, results, database, total",
                            description="Show how much disk DATA_DIR uses, by part.")
    data.set_defaults(func=command_data)

    add_render_command(commands)
    add_train_command(commands)
    add_course_command(commands)
    add_weights_command(commands)
    add_worker_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
