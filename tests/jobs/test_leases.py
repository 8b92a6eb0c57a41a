"""Leases, claims that never collide, and the rows that carry a job's files and events between machines.

On both engines: PostgreSQL is where several workers really claim at once.
"""

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select, update

from bot.art.models import ModelChoice
from bot.jobs.events import DatabaseViews
from bot.jobs.files import DatabaseFiles, materialize
from bot.jobs.repository import MAX_ATTEMPTS, IllegalTransition, JobRepository
from bot.jobs.spec import JobSpec
from bot.jobs.worker import GpuWorker, JobOutput, ProgressEvent
from models import Job, JobEvent, JobInput, JobStatus
from models import JobOutput as StoredOutput
from tests.jobs.test_repository import new_job
from tests.postgres import both_engines

pytestmark = both_engines
LEASE = timedelta(seconds=30)


def read(path: str | Path) -> bytes:
    return Path(path).read_bytes()


def found(folder: Path, name: str) -> list[Path]:
    return list(folder.rglob(name))


async def expire_lease(sessions, job_id: int) -> None:
    async with sessions.begin() as session:
        await session.execute(update(Job).where(Job.id == job_id).values(lease_expires_at=Job.started_at))


async def test_a_claim_holds_a_lease_that_only_its_worker_renews_or_ends(sessions):
    repository = JobRepository(sessions)
    job = await repository.add(new_job())
    claimed = await repository.claim_next("a", LEASE)
    assert (claimed.id, claimed.worker_id, claimed.attempts) == (job.id, "a", 1)
    assert claimed.lease_expires_at > claimed.started_at

    assert await repository.renew_lease(job.id, "a", LEASE, step=7) is False  # renewed; no cancel asked
    assert (await repository.get(job.id)).progress_step == 7
    assert await repository.renew_lease(job.id, "b", LEASE, step=9) is None  # not b's
    with pytest.raises(IllegalTransition, match="no longer as expected"):
        await repository.transition(job.id, JobStatus.RUNNING, JobStatus.DONE, only_if=Job.worker_id == "b")
    done = await repository.transition(job.id, JobStatus.RUNNING, JobStatus.DONE, only_if=Job.worker_id == "a")
    assert done.status == JobStatus.DONE and done.lease_expires_at is None
    assert await repository.renew_lease(job.id, "a", LEASE, step=10) is None  # finished: nothing to renew


async def test_only_jobs_whose_lease_ran_out_are_taken_back(sessions):
    repository = JobRepository(sessions)
    alive, dead, dead_twice, dead_cancelled = [await repository.add(new_job(user_id=user)) for user in (1, 2, 3, 4)]
    for worker in ("alive", "dead", "dead-twice", "dead-cancelled"):
        await repository.claim_next(worker, LEASE)
    async with sessions.begin() as session:
        await session.execute(update(Job).where(Job.id == dead_twice.id).values(attempts=MAX_ATTEMPTS))
        await session.execute(update(Job).where(Job.id == dead_cancelled.id).values(cancel_requested=True))
    for job in (dead, dead_twice, dead_cancelled):
        await expire_lease(sessions, job.id)

    requeued, failed, cancelled = await repository.recover_interrupted(only_expired=True)
    assert [job.id for job in requeued] == [dead.id] and requeued[0].status == JobStatus.QUEUED
    assert [job.id for job in failed] == [dead_twice.id] and "stopped twice" in failed[0].error
    assert [job.id for job in cancelled] == [dead_cancelled.id]
    assert (await repository.get(alive.id)).status == JobStatus.RUNNING  # its worker still renews it
    assert await repository.renew_lease(dead.id, "dead", LEASE, step=1) is None  # the dead worker lost it


async def test_a_cancel_asked_for_elsewhere_reaches_the_worker_when_it_renews(sessions):
    repository = JobRepository(sessions)
    job = await repository.add(new_job())
    assert await repository.request_cancel(job.id) is False  # queued: no worker to tell
    await repository.claim_next("a", LEASE)
    assert await repository.request_cancel(job.id) is True
    assert await repository.renew_lease(job.id, "a", LEASE, step=1) is True
    await expire_lease(sessions, job.id)
    assert await repository.request_cancel(job.id) is False  # its worker is gone: the caller cancels it itself


async def test_workers_claiming_at_once_never_take_the_same_job(sessions):
    repository = JobRepository(sessions)
    jobs = [await repository.add(new_job(user_id=index % 5, guild_id=index % 3)) for index in range(30)]
    claims: dict[str, list[int]] = {}

    async def worker(name: str) -> None:
        claims[name] = []
        while (job := await JobRepository(sessions).claim_next(name, LEASE)) is not None:
            claims[name].append(job.id)

    await asyncio.gather(*(worker(f"w{index}") for index in range(6)))
    claimed = [job_id for ids in claims.values() for job_id in ids]
    assert sorted(claimed) == sorted(job.id for job in jobs)  # each exactly once
    async with sessions() as session:
        owners = dict((await session.execute(select(Job.id, Job.worker_id))).all())
    assert all(owners[job_id] == name for name, ids in claims.items() for job_id in ids)


async def test_input_images_travel_in_rows_until_the_job_finishes(sessions, tmp_path: Path):
    repository = JobRepository(sessions)
    spec = JobSpec.from_dict({"technique": "imagine", "seed": 1, "config": {
        "prompt": "p", "init_image": "/bot/only/init.png", "image_prompt": "/shared/disk/look.png"}})
    job = await repository.add(new_job(technique="imagine", spec=spec.to_dict()),
                               {"init_image": b"init bytes", "../../escape": b"never written"})
    files = DatabaseFiles(sessions, tmp_path / "worker")
    prepared = await files.prepare(job.id, spec)
    assert read(prepared.config.init_image) == b"init bytes"
    assert Path(prepared.config.init_image).is_relative_to(tmp_path / "worker")
    assert prepared.config.image_prompt == "/shared/disk/look.png"  # no row (SQLite on one machine): as it was
    assert not found(tmp_path, "escape")  # a row names a field of the spec, never a path

    await repository.claim_next("a", LEASE)
    await repository.transition(job.id, JobStatus.RUNNING, JobStatus.FAILED, error="x")
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(JobInput)) == 0


async def test_results_travel_in_rows_and_land_in_the_bots_results_folder(sessions, tmp_path: Path):
    repository = JobRepository(sessions)
    job = await repository.add(new_job())
    folder = tmp_path / "worker" / "results" / f"job-{job.id}"
    folder.mkdir(parents=True)
    Image.new("RGB", (8, 8), "red").save(folder / "final.png")
    (folder / "steps.gif").write_bytes(b"gif")
    (folder / "loss.png").write_bytes(b"chart")
    output = JobOutput(folder / "final.png", folder / "steps.gif", folder / "loss.png", result=None)  # type: ignore[arg-type]

    paths = await DatabaseFiles(sessions, tmp_path / "worker").keep(job.id, output)
    async with sessions.begin() as session:
        session.add(StoredOutput(job_id=job.id, name="../../../escape.png", data=b"never written"))
    assert paths == {"result_path": None, "animation_path": None}
    assert not folder.exists()  # the worker keeps nothing
    await repository.claim_next("a", LEASE)
    done = await repository.transition(job.id, JobStatus.RUNNING, JobStatus.DONE, **paths)

    landed = await materialize(sessions, tmp_path / "bot" / "results", done)
    assert Path(landed.result_path) == tmp_path / "bot" / "results" / f"job-{job.id}" / "final.png"
    assert read(landed.animation_path) == b"gif"
    assert read(Path(landed.result_path).parent / "loss.png") == b"chart"
    assert (await repository.get(job.id)).result_path == landed.result_path
    assert not found(tmp_path, "escape.png")  # only the three known names are written
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(StoredOutput)) == 0  # pruned once stored


async def test_events_keep_their_order_and_progress_is_coalesced(sessions):
    repository = JobRepository(sessions)
    job = await repository.add(new_job())
    views = DatabaseViews(sessions, progress_seconds=60.0)  # no timed flush during the test
    await views.job_started(job)
    for step in (1, 2, 3):
        views.job_progress(job, ProgressEvent(job.id, step, 3, Image.new("RGB", (4, 4)), {"loss": 1.0 / step}))
    await views.job_done(job)
    await views.close()
    async with sessions() as session:
        events = list(await session.scalars(select(JobEvent).order_by(JobEvent.id)))
    assert [(event.kind, event.step) for event in events] == [("started", 0), ("progress", 3), ("done", 0)]
    assert events[1].preview_png.startswith(b"\x89PNG") and events[1].metrics == {"loss": pytest.approx(1 / 3)}


async def test_a_worker_without_the_bots_disk_leaves_model_jobs_to_the_bots_own(sessions, tmp_path: Path):
    repository = JobRepository(sessions)
    training = await repository.add(new_job(technique="train"))
    pattern = await repository.add(new_job(user_id=2))
    remote = GpuWorker(ModelChoice(weights_dir=tmp_path), "cpu", tmp_path / "results", progress_every=1)
    own = GpuWorker(ModelChoice(weights_dir=tmp_path), "cpu", tmp_path / "results", progress_every=1,
                    workspace=tmp_path / "gan")
    assert (await repository.claim_next("remote", LEASE, skip_techniques=remote.cannot_run())).id == pattern.id
    assert await repository.claim_next("remote", LEASE, skip_techniques=remote.cannot_run()) is None
    assert (await repository.claim_next("own", LEASE, skip_techniques=own.cannot_run())).id == training.id
