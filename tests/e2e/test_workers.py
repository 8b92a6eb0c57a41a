"""Workers on other machines, end to end: the bot runs with --no-worker, `python -m bot worker` processes run
the jobs, and everything reaches Discord through the database. On SQLite (one machine) and on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.jobs.repository import JobRepository
from models import JobStatus
from tests.discord_fake import FakeDiscord
from tests.e2e.conftest import PROJECT_ROOT, RunningBot, bot_settings
from tests.e2e.test_generation import final_message, job_id_of, png, receipt_complete, wait_for_status
from tests.postgres import both_engines

pytestmark = both_engines
LEASE_SECONDS = "2"
# The worker as a process; at its end it says whether anything imported discord.py.
WORKER = ("import sys; from bot.cli import main; code = main(['worker']); "
          "print('discord imported:', 'discord' in sys.modules, flush=True); sys.exit(code)")


async def start_worker(database_url: str, folder: Path, name: str) -> asyncio.subprocess.Process:
    """A worker with a data folder of its own: it shares only the database with the bot."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "DATABASE_URL": database_url, "DATA_DIR": str(folder),
           "DEVICE": "cpu", "CLIP_MODEL": "easel-tiny", "CLIP_PRETRAINED": "none", "VGG_WEIGHTS": "none",
           "WORKER_NAME": name, "WORKER_LEASE_SECONDS": LEASE_SECONDS, "PROGRESS_EVERY": "5"}
    env.pop("DISCORD_TOKEN", None)  # a worker needs none
    return await asyncio.create_subprocess_exec(sys.executable, "-c", WORKER, cwd=PROJECT_ROOT, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)


@pytest.fixture
async def workers() -> AsyncIterator[list[asyncio.subprocess.Process]]:
    started: list[asyncio.subprocess.Process] = []
    yield started
    for process in started:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.fixture
async def bot_without_worker(fake: FakeDiscord, tmp_path: Path, database_url: str) -> AsyncIterator[RunningBot]:
    settings = bot_settings(fake, tmp_path / "bot", database_url=database_url,
                            worker_lease_seconds=float(LEASE_SECONDS), status_edit_seconds=0.05)
    running = RunningBot(settings)
    await running.start(run_worker=False)
    yield running
    await running.stop()


async def wait_for_workers(bot, count: int) -> None:
    for _ in range(600):
        if len(await bot.jobs.workers()) == count:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{count} workers did not register")


async def test_two_workers_drain_one_queue_and_no_job_runs_twice(
        fake: FakeDiscord, bot_without_worker: RunningBot, workers, database_url: str, tmp_path: Path):
    bot = bot_without_worker.bot
    for name in ("gpu-a", "gpu-b"):
        workers.append(await start_worker(database_url, tmp_path / name, name))
    await wait_for_workers(bot, 2)
    about = await fake.answer(await fake.send_command(fake.add_member("curious"), "about"))
    listed = {field["name"]: field["value"] for field in about.embeds[0]["fields"]}["Workers (2)"]
    assert "**gpu-a** · cpu · idle" in listed and "**gpu-b** · cpu · idle" in listed

    # Each job takes seconds, longer than a SQLite worker's poll, so both workers surely take some.
    interactions = [await fake.send_command(fake.add_member(f"student{index}"), "cppn", {"size": 32, "steps": 1000})
                    for index in range(3)]
    # An input image travels to whichever worker runs the job (in job_inputs rows on PostgreSQL).
    interactions.append(await fake.send_command(fake.add_member("fitter"), "cppn", {"size": 16, "steps": 20},
                                                attachments={"target": ("t.png", png(), "image/png")}))
    job_ids = []
    for interaction in interactions:
        await fake.wait_until(lambda i=interaction: i.original is not None and "Queued job #" in i.original.content,
                              timeout=30)
        job_ids.append(job_id_of(interaction))
    jobs = [await wait_for_status(fake, bot, job_id, JobStatus.DONE, within=120) for job_id in job_ids]

    assert all(job.attempts == 1 for job in jobs)  # none was claimed twice
    assert {job.worker_id.split("-")[0] for job in jobs} <= {os.uname().nodename.split("-")[0]}
    assert len({job.worker_id for job in jobs}) == 2  # both workers took jobs
    for job in jobs:
        await fake.wait_until(lambda j=job: final_message(fake, j.thread_id) is not None, timeout=30)
        posted = await JobRepository(bot.sessions).get(job.id)
        assert Path(posted.result_path).is_relative_to(tmp_path / "bot")  # the bot's own copy, from the rows
    for process in workers:
        process.send_signal(signal.SIGTERM)
        stdout, _ = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0 and b"discord imported: False" in stdout


async def test_a_killed_workers_job_finishes_once_on_another_after_its_lease(
        fake: FakeDiscord, bot_without_worker: RunningBot, workers, database_url: str, tmp_path: Path):
    bot = bot_without_worker.bot
    workers.append(await start_worker(database_url, tmp_path / "doomed", "doomed"))
    await wait_for_workers(bot, 1)
    interaction = await fake.send_command(fake.add_member("student"), "cppn", {"size": 32, "steps": 4000})
    await fake.wait_until(lambda: receipt_complete(interaction), timeout=30)  # its thread and status exist
    job_id = job_id_of(interaction)
    running = await wait_for_status(fake, bot, job_id, JobStatus.RUNNING, within=60)
    await fake.wait_until(lambda: "Step" in (fake.get_message(running.status_message_id).embeds or [{}])[0]
                          .get("description", ""), timeout=60)  # its progress reached Discord

    workers[0].kill()  # SIGKILL: no goodbye, the lease just stops being renewed
    await workers[0].wait()
    workers.append(await start_worker(database_url, tmp_path / "rescuer", "rescuer"))

    done = await wait_for_status(fake, bot, job_id, JobStatus.DONE, within=120)
    assert done.attempts == 2 and done.worker_id != running.worker_id
    await fake.wait_until(lambda: final_message(fake, done.thread_id) is not None, timeout=30)
    await asyncio.sleep(1.0)
    assert final_message(fake, done.thread_id) is not None  # exactly one (final_message checks)
    assert len([m for m in fake.messages(done.thread_id) if "your job is done" in (m.content or "")]) == 1
    assert (await JobRepository(bot.sessions).get(job_id)).status == JobStatus.DONE
