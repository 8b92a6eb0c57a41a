"""`python -m bot worker`: the GPU worker alone, for a machine that lends its GPU to a PostgreSQL deployment.

It needs no Discord token and imports no Discord code. It claims jobs from the shared queue with a
lease, runs them, and writes their events and files into the database, where the bot (started with
`python -m bot run --no-worker`) picks them up and posts them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from bot.settings import Settings

log = logging.getLogger("bot.worker")


async def run_worker(settings: Settings) -> int:
    from bot import db  # Alembic and SQLAlchemy: only this command needs them
    from bot.jobs.events import DatabaseViews
    from bot.jobs.files import DatabaseFiles
    from bot.jobs.repository import JobRepository
    from bot.jobs.runner import JobRunner
    from bot.jobs.signals import JOBS_QUEUED, listening
    from bot.jobs.worker import GpuWorker
    from bot.jobs.workers import Lease, WorkerRegistry

    engine = db.create_engine(settings.resolved_database_url)
    scratch: Path | None = None
    try:
        if await db.current_revision(engine) != db.head_revision():
            print("The database is not at the newest schema: run `python -m bot db upgrade` first.", file=sys.stderr)
            return 1
        sessions = db.create_session_factory(engine)
        scratch = Path(tempfile.mkdtemp(prefix="easel-worker-"))  # shares no disk with the bot
        gpu = GpuWorker.from_settings(settings, scratch / "results")
        views = DatabaseViews(sessions)
        registry = WorkerRegistry(sessions)
        runner = JobRunner(JobRepository(sessions), gpu, views, DatabaseFiles(sessions, scratch / "inputs"), registry,
                           lease=Lease(settings.worker_lease_seconds))
        await registry.register(gpu, settings.worker_name)
        log.info("worker %s on %s; %s", registry.worker_id, gpu.device, "; ".join(gpu.describe()))

        stop_requested = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stop_requested.set)
        async with listening(settings.resolved_database_url, JOBS_QUEUED, runner.wake):
            runner.start()
            await stop_requested.wait()
            await runner.stop()  # a job under way stops between steps and goes back to the queue
        await views.close()
        log.info("worker %s stopped", registry.worker_id)
        return 0
    finally:
        await engine.dispose()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def command_worker(args: argparse.Namespace) -> int:
    from bot.cli import device_is_usable, load_settings, start_logging  # bot.cli imports this module

    settings = load_settings()
    if settings is None or not device_is_usable(settings):
        return 2
    start_logging(settings)
    return asyncio.run(run_worker(settings))


def add_worker_command(commands: argparse._SubParsersAction) -> None:
    worker = commands.add_parser(
        "worker", help="run a GPU worker alone, for a bot started with `run --no-worker`",
        description="Run the GPU worker without Discord: it takes jobs from the queue in DATABASE_URL "
                    "(PostgreSQL, shared with the bot and the other workers) and sends back their progress and "
                    "results through it. Start as many as you have GPUs; stop one with Ctrl-C, and its job goes "
                    "back to the queue.")
    worker.set_defaults(func=command_worker)
