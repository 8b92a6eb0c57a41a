import os
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.jobs.repository import JobRepository
from bot.retention import data_size, human_size, prune
from models import Job, JobStatus
from models.base import utcnow
from tests.postgres import both_engines

pytestmark = both_engines

KEEP_DAYS = 30
NOW = utcnow()
OLD = NOW - timedelta(days=KEEP_DAYS + 1)
RECENT = NOW - timedelta(days=KEEP_DAYS - 1)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def repository(sessions) -> JobRepository:
    return JobRepository(sessions)


def age(path: Path, hours: float = 2) -> Path:
    """Sets a file's (or a symlink's own) time `hours` ago."""
    then = time.time() - hours * 3600
    os.utime(path, (then, then), follow_symlinks=False)
    return path


def upload(data_dir: Path, name: str, *, hours_old: float = 2) -> Path:
    path = data_dir / "uploads" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * 1000)
    return age(path, hours_old)


async def add_job(repository: JobRepository, status: JobStatus, finished_at: datetime | None = None,
                  *images: Path) -> Job:
    config = {"prompt": "a lighthouse", **{f"image_{i}": str(path) for i, path in enumerate(images)}}
    return await repository.add(Job(
        guild_id=10, channel_id=20, user_id=1, technique="imagine", title="t", seed=1, total_steps=10,
        spec={"technique": "imagine", "seed": 1, "config": config}, status=status, finished_at=finished_at,
    ))


async def add_result(repository: JobRepository, data_dir: Path, status: JobStatus,
                     finished_at: datetime | None) -> tuple[Job, Path]:
    """A job with a result folder as the worker leaves it, its paths recorded on the row."""
    job = await add_job(repository, status, finished_at)
    folder = data_dir / "results" / f"job-{job.id}"
    folder.mkdir(parents=True)
    for name in ("final.png", "steps.gif", "loss.png"):
        (folder / name).write_bytes(b"r" * 500)
    async with repository.sessions.begin() as session:
        stored = await session.get(Job, job.id)
        stored.result_path, stored.animation_path = str(folder / "final.png"), str(folder / "steps.gif")
    return job, folder


async def test_results_of_jobs_finished_long_ago_are_removed_and_their_rows_say_so(repository, sessions,
                                                                                     data_dir):
    old, old_folder = await add_result(repository, data_dir, JobStatus.DONE, OLD)
    recent, recent_folder = await add_result(repository, data_dir, JobStatus.DONE, RECENT)
    running, running_folder = await add_result(repository, data_dir, JobStatus.RUNNING, None)
    stale_queued, stale_queued_folder = await add_result(repository, data_dir, JobStatus.QUEUED, OLD)  # only finished

    report = await prune(sessions, data_dir, KEEP_DAYS, now=NOW)

    assert not old_folder.exists() and recent_folder.exists() and running_folder.exists()
    assert stale_queued_folder.exists()
    assert [(item.kind, item.path, item.size_bytes) for item in report.removed] == [("result", old_folder, 1500)]
    assert report.count("result") == 1 and report.bytes_freed() == 1500
    forgotten = await repository.get(old.id)
    assert forgotten.result_path is None and forgotten.animation_path is None
    for kept in (recent, running, stale_queued):
        assert (await repository.get(kept.id)).result_path is not None


async def test_uploads_are_kept_while_a_queued_running_or_recent_job_reads_them(repository, sessions, data_dir):
    for_queued, for_running, for_recent, for_old, orphan = (
        upload(data_dir, f"{name}.png") for name in ("queued", "running", "recent", "old", "orphan"))
    await add_job(repository, JobStatus.QUEUED, None, for_queued)
    await add_job(repository, JobStatus.RUNNING, None, for_running)
    await add_job(repository, JobStatus.DONE, RECENT, for_recent)
    await add_job(repository, JobStatus.FAILED, OLD, for_old)

    report = await prune(sessions, data_dir, KEEP_DAYS, now=NOW)

    assert {item.path for item in report.removed} == {for_old, orphan}
    assert report.count("upload") == 2 and report.bytes_freed("upload") == 2000
    assert for_queued.exists() and for_running.exists() and for_recent.exists()
    assert "2 uploads (2.0 kB)" in report.summary()


async def test_an_orphan_upload_younger_than_an_hour_is_kept(sessions, data_dir):
    being_submitted = upload(data_dir, "new.png", hours_old=0.5)
    stale = upload(data_dir, "stale.png", hours_old=1.5)
    report = await prune(sessions, data_dir, KEEP_DAYS, now=NOW)
    assert being_submitted.exists() and not stale.exists()
    assert [item.path for item in report.removed] == [stale]


async def test_an_old_result_that_a_waiting_job_reads_is_kept(repository, sessions, data_dir):
    old, folder = await add_result(repository, data_dir, JobStatus.DONE, OLD)
    await add_job(repository, JobStatus.QUEUED, None, folder / "final.png")  # a remix of job `old`
    report = await prune(sessions, data_dir, KEEP_DAYS, now=NOW)
    assert report.removed == [] and folder.exists()
    assert (await repository.get(old.id)).result_path == str(folder / "final.png")


async def test_zero_days_keeps_everything(repository, sessions, data_dir):
    _, folder = await add_result(repository, data_dir, JobStatus.DONE, NOW - timedelta(days=3650))
    orphan = upload(data_dir, "orphan.png", hours_old=24 * 3650)
    report = await prune(sessions, data_dir, 0, now=NOW)
    assert report.removed == [] and folder.exists() and orphan.exists()


async def test_nothing_outside_the_two_folders_is_touched_and_no_symlink_followed(repository, sessions, data_dir,
                                                                                 tmp_path, caplog):
    outside = tmp_path / "outside"
    outside.mkdir()
    precious = outside / "precious.png"
    precious.write_bytes(b"p")
    age(precious)
    (data_dir / "uploads").mkdir(parents=True)
    link = data_dir / "uploads" / "link.png"
    link.symlink_to(precious)
    age(link)
    _, folder = await add_result(repository, data_dir, JobStatus.DONE, OLD)
    (folder / "escape").symlink_to(outside)  # inside a folder that goes: unlinked, never followed
    other = await add_job(repository, JobStatus.DONE, OLD)
    other_folder = data_dir / "results" / f"job-{other.id}"
    other_folder.symlink_to(outside, target_is_directory=True)  # a job-<id> "folder" that is a symlink
    third = await add_job(repository, JobStatus.DONE, OLD)
    not_a_result = data_dir / "results" / f"job-{third.id}.bak"
    not_a_result.mkdir()
    (not_a_result / "final.png").write_bytes(b"b")
    database, log_file = data_dir / "easel.db", data_dir / "logs" / "easel.log"
    log_file.parent.mkdir()
    for path in (database, log_file):
        path.write_bytes(b"keep")
        age(path)

    report = await prune(sessions, data_dir, KEEP_DAYS, now=NOW)

    assert [item.path for item in report.removed] == [folder]
    assert "could not remove" not in caplog.text  # the symlinks were never even tried
    assert precious.exists() and link.is_symlink() and other_folder.is_symlink() and not_a_result.exists()
    assert database.exists() and log_file.exists() and sorted(p.name for p in outside.iterdir()) == ["precious.png"]


async def test_an_uploads_folder_that_is_a_symlink_is_left_alone(sessions, data_dir, tmp_path):
    orphan = upload(tmp_path, "orphan.png")  # in tmp_path/uploads
    data_dir.mkdir()
    (data_dir / "uploads").symlink_to(orphan.parent, target_is_directory=True)
    report = await prune(sessions, data_dir, KEEP_DAYS, now=NOW)
    assert report.removed == [] and orphan.exists()


def test_data_size_by_part(data_dir):
    upload(data_dir, "a.png")
    (data_dir / "results" / "job-1").mkdir(parents=True)
    (data_dir / "results" / "job-1" / "final.png").write_bytes(b"r" * 300)
    (data_dir / "easel.db").write_bytes(b"d" * 50)
    (data_dir / "easel.db-wal").write_bytes(b"w" * 7)
    size = data_size(data_dir, f"sqlite+aiosqlite:///{data_dir / 'easel.db'}")
    assert (size.uploads, size.results, size.database, size.total) == (1000, 300, 57, 1357)


@pytest.mark.parametrize("size, text", [(0, "0 B"), (999, "999 B"), (1500, "1.5 kB"), (48_000_000, "48.0 MB"),
                                        (3_200_000_000, "3.2 GB"), (5 * 10**12, "5.0 TB")])
def test_human_size(size, text):
    assert human_size(size) == text
