"""Workers sharing one PostgreSQL queue: jobs per minute with 1 and 2 `python -m bot worker` processes.

A throwaway PostgreSQL cluster (as in the tests) holds the queue. For each technique, the jobs are queued
at once and the workers drain them; throughput is jobs finished per minute from the first queued to the
last finished. One worker is the baseline, measured in the same run. Each worker gets one CPU thread
(OMP_NUM_THREADS=1), so two workers on this 2-core machine stand for two machines. Then the claim latency:
queued to running with idle workers, one job at a time (NOTIFY wakes them).

    HF_HUB_OFFLINE=1 python bench/bench_workers.py [--noop-jobs 200] [--imagine-jobs 24]

Without PostgreSQL at hand it says so and exits 0. Last line: workers2_speedup=X.XX (noop, 2 over 1).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import os
import signal
import tempfile
import time

from sqlalchemy import func, select

from bench.figures import figure, percentile
from bench.noop import NoopConfig
from bot import db
from bot.art.techniques.imagine import TECHNIQUE as IMAGINE
from bot.jobs.repository import JobRepository
from bot.jobs.spec import JobSpec
from models import Job, JobStatus, Worker
from tests.postgres import PostgresMissing, ThrowawayCluster

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WORKER = ("from bench.noop import register_noop; register_noop(); import sys; from bot.cli import main; "
          "sys.exit(main(['worker']))")
WAIT_SECONDS = 600.0


def noop_spec(seed: int) -> JobSpec:
    return JobSpec(technique="noop", config=NoopConfig(steps=1, size=16), seed=seed)  # type: ignore[arg-type]


def imagine_spec(seed: int) -> JobSpec:
    config = IMAGINE.config_type(prompt="a lighthouse at dusk", size=64, steps=10, cutn=8)
    return JobSpec(technique="imagine", config=config, seed=seed)


async def start_workers(url: str, count: int, folder: Path) -> list[asyncio.subprocess.Process]:
    processes = []
    for index in range(count):
        env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "DATABASE_URL": url,
               "DATA_DIR": str(folder / f"worker{index}"), "DEVICE": "cpu", "CLIP_MODEL": "easel-tiny",
               "CLIP_PRETRAINED": "none", "VGG_WEIGHTS": "none", "WORKER_NAME": f"bench-{index}",
               "PROGRESS_EVERY": "1000", "LOG_LEVEL": "WARNING", "OMP_NUM_THREADS": "1"}
        processes.append(await asyncio.create_subprocess_exec(
            sys.executable, "-c", WORKER, cwd=PROJECT_ROOT, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL))
    return processes


async def stop_workers(processes: list[asyncio.subprocess.Process]) -> None:
    for process in processes:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            await asyncio.wait_for(process.wait(), 60)
        except TimeoutError:
            process.kill()


async def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)


async def count(sessions, query) -> int:
    async with sessions() as session:
        return await session.scalar(query) or 0


async def reached(sessions, query, expected: int) -> bool:
    return await count(sessions, query) == expected


async def with_workers(cluster: ThrowawayCluster, workers: int, folder: Path, measure) -> object:
    """A fresh database, `workers` worker processes registered and idle, then `measure(sessions, repository)`."""
    url = cluster.create_database()
    engine = db.create_engine(url)
    await db.upgrade(engine)
    sessions = db.create_session_factory(engine)
    processes = await start_workers(url, workers, folder)
    try:
        await wait_for(lambda: reached(sessions, select(func.count()).select_from(Worker), workers),
                       "the workers did not start")
        return await measure(sessions, JobRepository(sessions))
    finally:
        await stop_workers(processes)
        await engine.dispose()


def throughput(spec_of, jobs: int):
    async def measure(sessions, repository: JobRepository) -> float:
        specs = [spec_of(index) for index in range(jobs)]
        started = time.monotonic()
        for index, spec in enumerate(specs):  # ten people, so the fair order has work to do
            await repository.add(Job(guild_id=1, channel_id=2, user_id=1000 + index % 10, technique=spec.technique,
                                     spec=spec.to_dict(), seed=spec.seed, title=spec.technique,
                                     total_steps=spec.config.steps))
        done = select(func.count()).select_from(Job).where(Job.status == JobStatus.DONE)
        await wait_for(lambda: reached(sessions, done, jobs), "the jobs did not finish")
        return jobs / (time.monotonic() - started) * 60

    return measure


def claim_latencies(jobs: int):
    async def measure(sessions, repository: JobRepository) -> list[float]:
        latencies = []
        for index in range(jobs):
            spec = noop_spec(index)
            job = await repository.add(Job(guild_id=1, channel_id=2, user_id=1, technique="noop",
                                           spec=spec.to_dict(), seed=spec.seed, title="noop", total_steps=1))

            async def finished(job_id: int = job.id) -> bool:
                row = await repository.get(job_id)
                return row is not None and row.status == JobStatus.DONE

            await wait_for(finished, "a job did not finish")
            row = await repository.get(job.id)
            latencies.append((row.started_at - row.created_at).total_seconds() * 1000)
        return latencies

    return measure


async def main(noop_jobs: int, imagine_jobs: int) -> int:
    try:
        cluster = ThrowawayCluster()
        cluster.start()
    except PostgresMissing as missing:
        print(f"no PostgreSQL at hand ({missing}): nothing measured")
        return 0
    folder = Path(tempfile.mkdtemp(prefix="easel-bench-workers-"))
    try:
        speedups = {}
        for name, spec_of, jobs in (("noop", noop_spec, noop_jobs), ("imagine", imagine_spec, imagine_jobs)):
            rates = {}
            for workers in (1, 2):
                rates[workers] = await with_workers(cluster, workers, folder, throughput(spec_of, jobs))
                figure(f"{name}_workers{workers}_jobs_per_min", rates[workers])
            speedups[name] = rates[2] / rates[1]
            figure(f"{name}_speedup", speedups[name])
        latencies = await with_workers(cluster, 2, folder, claim_latencies(30))
        figure("claim_latency_p50_ms", percentile(latencies, 0.5))
        figure("claim_latency_p99_ms", percentile(latencies, 0.99))
        print(f"workers2_speedup={speedups['noop']:.2f}")
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--noop-jobs", type=int, default=200)
    parser.add_argument("--imagine-jobs", type=int, default=24)
    arguments = parser.parse_args()
    sys.exit(asyncio.run(main(arguments.noop_jobs, arguments.imagine_jobs)))
