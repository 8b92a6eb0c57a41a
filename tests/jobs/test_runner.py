"""The runner with the real worker thread and a technique that fails: the queue goes on."""

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from sqlalchemy import update

from bot.art.imagefiles import ImageRejected
from bot.art.models import ModelChoice
from bot.art.technique import param
from bot.art.techniques import TECHNIQUES
from bot.art.techniques.cppn import TECHNIQUE as CPPN
from bot.art.techniques.imagine import ImagineConfig
from bot.jobs.files import LocalFiles
from bot.jobs.repository import JobRepository
from bot.jobs.runner import JobRunner, explain_failure
from bot.jobs.spec import JobSpec
from bot.jobs.worker import GpuWorker, JobFailed
from bot.jobs.workers import Lease, WorkerRegistry
from models import Job, JobStatus
from models.base import utcnow


@dataclass(frozen=True)
class ExplodingConfig:
    steps: int = param(1, help="steps", min=1, max=10, limit="steps")


class OutOfMemoryTechnique:
    name = "explode"
    config_type = ExplodingConfig

    def run(self, config, seed, ctx):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


class RecordingViews:
    def __init__(self) -> None:
        self.events: list[tuple[str, int, str]] = []

    async def job_started(self, job):
        self.events.append(("started", job.id, ""))

    def job_progress(self, job, event):
        self.events.append(("progress", job.id, f"{event.step}/{event.total}"))

    async def job_done(self, job):
        self.events.append(("done", job.id, Path(job.result_path).name))

    async def job_failed(self, job, message):
        self.events.append(("failed", job.id, message))

    async def job_cancelled(self, job):
        self.events.append(("cancelled", job.id, ""))

    async def job_requeued(self, job):
        self.events.append(("requeued", job.id, ""))


DEFAULT_LEASE = Lease()


def cpu_worker(tmp_path: Path, **options) -> GpuWorker:
    """The worker on the CPU, with the tiny CLIP (random weights) for imagine jobs."""
    choice = ModelChoice(weights_dir=tmp_path, clip_model="easel-tiny", clip_pretrained="none")
    return GpuWorker(choice, "cpu", tmp_path / "results", progress_every=2, **options)


def make_runner(repository: JobRepository, worker: GpuWorker, views: RecordingViews,
                lease: Lease = DEFAULT_LEASE) -> JobRunner:
    """A runner as the bot makes its own: files on the local disk, a lease renewed as it runs."""
    return JobRunner(repository, worker, views, LocalFiles(), WorkerRegistry(repository.sessions), lease=lease)


async def until_running(runner: JobRunner) -> None:
    for _ in range(400):
        if runner.running:
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("the runner started no job")


@pytest.fixture
def exploding_technique(monkeypatch):
    monkeypatch.setitem(TECHNIQUES, "explode", OutOfMemoryTechnique())


def stored_job(spec: JobSpec, user_id: int = 1) -> Job:
    return Job(guild_id=1, channel_id=2, user_id=user_id, technique=spec.technique, spec=spec.to_dict(),
               seed=spec.seed, title=spec.technique, total_steps=getattr(spec.config, "steps", 0))


async def test_a_failing_job_is_explained_and_the_next_job_runs(sessions, tmp_path, exploding_technique):
    repository = JobRepository(sessions)
    failing = await repository.add(stored_job(JobSpec("explode", ExplodingConfig(), seed=1)))
    cppn = CPPN.config_type(size=16, steps=4)
    working = await repository.add(stored_job(JobSpec("cppn", cppn, seed=2), user_id=2))
    views = RecordingViews()
    worker = cpu_worker(tmp_path)
    runner = make_runner(repository, worker, views)
    runner.start()
    try:
        for _ in range(400):
            if (await repository.get(working.id)).status == JobStatus.DONE:
                break
            await asyncio.sleep(0.05)
    finally:
        await runner.stop()

    failed = await repository.get(failing.id)
    assert failed.status == JobStatus.FAILED and "GPU ran out of memory" in failed.error
    done = await repository.get(working.id)
    assert done.status == JobStatus.DONE and done.metrics["steps_done"] == 4
    assert ("failed", failing.id, failed.error) in views.events
    assert [event for event in views.events if event[1] == working.id] == [
        ("started", working.id, ""), ("progress", working.id, "2/4"), ("progress", working.id, "4/4"),
        ("done", working.id, "final.png"),
    ]


def test_failures_are_explained_without_internals():
    assert explain_failure(ImageRejected("the init image is too small")) == "the init image is too small"
    assert len(explain_failure(JobFailed("x" * 5000))) == 300
    internal = explain_failure(ValueError("cannot reshape tensor of 0 elements into shape [1, -1]"))
    assert "reshape" not in internal and "ValueError" in internal and "log" in internal


async def test_cancels_of_jobs_the_runner_is_not_running_are_refused_and_not_kept(sessions, tmp_path):
    repository = JobRepository(sessions)
    worker = cpu_worker(tmp_path)
    runner = make_runner(repository, worker, RecordingViews())
    assert runner.cancel(12345) is False  # nothing runs: no promise to stop it, nothing remembered
    assert not runner._cancelled_by_people

    cppn = CPPN.config_type(size=16, steps=400)
    job = await repository.add(stored_job(JobSpec("cppn", cppn, seed=2)))
    runner.start()
    try:
        await until_running(runner)
        assert runner.cancel(job.id) is True
        for _ in range(400):
            if (await repository.get(job.id)).status == JobStatus.CANCELLED:
                break
            await asyncio.sleep(0.05)
    finally:
        await runner.stop()
    assert (await repository.get(job.id)).status == JobStatus.CANCELLED
    assert not runner._cancelled_by_people and not runner.running


async def test_a_worker_that_lost_its_lease_stops_the_job_and_records_nothing(sessions, tmp_path):
    """Its lease ran out (a long pause, say) and another worker took the job: this one must not finish it."""
    repository = JobRepository(sessions)
    worker = cpu_worker(tmp_path)
    views = RecordingViews()
    runner = make_runner(repository, worker, views, Lease(seconds=0.4))
    job = await repository.add(stored_job(JobSpec("cppn", CPPN.config_type(size=16, steps=10_000), seed=2)))
    runner.start()
    try:
        await until_running(runner)
        async with sessions.begin() as session:  # the bot took it back and another worker claimed it
            await session.execute(update(Job).where(Job.id == job.id).values(worker_id="another-worker"))
        for _ in range(400):
            if not runner.running:
                break
            await asyncio.sleep(0.05)
    finally:
        await runner.stop()
    stored = await repository.get(job.id)
    assert (stored.status, stored.worker_id) == (JobStatus.RUNNING, "another-worker")  # the other one's to finish
    assert {kind for kind, job_id, _ in views.events if job_id == job.id} == {"started", "progress"}  # no outcome
    last_step = max(int(detail.split("/")[0]) for kind, _, detail in views.events if kind == "progress")
    assert last_step < 10_000  # stopped as soon as it heard, not run to the end for nothing


async def test_a_cancel_asked_for_on_another_machine_reaches_the_runner(sessions, tmp_path):
    repository = JobRepository(sessions)
    worker = cpu_worker(tmp_path)
    views = RecordingViews()
    runner = make_runner(repository, worker, views, Lease(seconds=0.4))
    job = await repository.add(stored_job(JobSpec("cppn", CPPN.config_type(size=16, steps=10_000), seed=2)))
    runner.start()
    try:
        await until_running(runner)
        assert await repository.request_cancel(job.id) is True  # what the bot does for a worker elsewhere
        for _ in range(200):
            if (await repository.get(job.id)).status == JobStatus.CANCELLED:
                break
            await asyncio.sleep(0.05)
    finally:
        await runner.stop()
    assert (await repository.get(job.id)).status == JobStatus.CANCELLED
    assert ("cancelled", job.id, "") in views.events


async def test_with_room_for_two_the_runner_runs_two_jobs_at_once_and_keeps_both_leases(sessions, tmp_path):
    repository = JobRepository(sessions)
    long, short = (ImagineConfig(prompt="a lighthouse", steps=steps, size=32, cutn=2) for steps in (150, 4))
    first, second, third = [await repository.add(stored_job(JobSpec("imagine", config, seed=n), user_id=n))
                            for n, config in ((1, long), (2, long), (3, short))]
    views = RecordingViews()
    worker = cpu_worker(tmp_path, batch_jobs=2)
    runner = make_runner(repository, worker, views, Lease(seconds=0.4))
    runner.start()
    try:
        for _ in range(600):
            if {first.id, second.id} <= runner.running.keys():
                break
            await asyncio.sleep(0.01)
        assert runner.running.keys() == {first.id, second.id}  # the third waits for room
        await asyncio.sleep(0.8)  # twice the lease: only renewals keep both jobs this worker's
        rows = [await repository.get(job.id) for job in (first, second)]
        assert all(row.status == JobStatus.RUNNING and row.lease_expires_at > utcnow() for row in rows)
        for _ in range(1200):
            if (await repository.get(third.id)).status == JobStatus.DONE:
                break
            await asyncio.sleep(0.05)
    finally:
        await runner.stop()
    assert [(await repository.get(job.id)).status for job in (first, second, third)] == [JobStatus.DONE] * 3
    assert views.events.index(("started", third.id, "")) > min(
        views.events.index(event) for event in views.events if event[0] == "done")
