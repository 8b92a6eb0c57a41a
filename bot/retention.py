"""Retention of stored files: results of jobs finished long ago, and uploads no live job needs, are removed.

A job is live while it is queued or running, or finished within KEEP_RESULTS_DAYS. Only what lies
directly in DATA_DIR/uploads and the job-<id> folders of DATA_DIR/results is ever removed, and
no symlink is followed. KEEP_RESULTS_DAYS=0 keeps everything.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import or_, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.jobs.repository import FINISHED
from models import Job, JobStatus
from models.base import utcnow

log = logging.getLogger(__name__)

# An upload younger than this is kept even when no job names it yet: its job may be being submitted.
UPLOAD_GRACE = timedelta(hours=1)
RESULT_FOLDER = re.compile(r"job-(\d+)")
IDS_PER_QUERY = 500  # well below SQLite's limit on bound parameters

Kind = Literal["result", "upload"]


@dataclass(frozen=True)
class Removed:
    kind: Kind
    path: Path  # a job's result folder, or an upload file
    size_bytes: int


@dataclass(frozen=True)
class PruneReport:
    removed: list[Removed] = field(default_factory=list)

    def count(self, kind: Kind) -> int:
        return sum(1 for item in self.removed if item.kind == kind)

    def bytes_freed(self, kind: Kind | None = None) -> int:
        return sum(item.size_bytes for item in self.removed if kind is None or item.kind == kind)

    def summary(self) -> str:
        """E.g. "Removed 2 result folders (3.1 MB) and 5 uploads (12.0 MB): 15.1 MB freed"."""
        results, uploads = self.count("result"), self.count("upload")
        return (f"Removed {results} result folder{'s' if results != 1 else ''} "
                f"({human_size(self.bytes_freed('result'))}) and {uploads} upload{'s' if uploads != 1 else ''} "
                f"({human_size(self.bytes_freed('upload'))}): {human_size(self.bytes_freed())} freed")


@dataclass(frozen=True)
class DataSize:
    """Bytes used: the whole data folder, and its parts."""

    total: int
    uploads: int
    results: int
    database: int


async def prune(sessions: async_sessionmaker[AsyncSession], data_dir: Path, keep_results_days: int,
                *, now: datetime | None = None) -> PruneReport:
    """Removes the results of jobs finished over `keep_results_days` ago and the uploads no live job reads.

    A result folder goes only once its job's row no longer points at it (result_path and
    animation_path set to NULL), so the bot says "no longer stored" rather than failing.
    """
    if keep_results_days == 0:
        return PruneReport()
    now = now or utcnow()
    cutoff = now - timedelta(days=keep_results_days)
    referenced = await _names_live_jobs_read(sessions, cutoff)
    folders = await asyncio.to_thread(_result_folders, data_dir / "results")
    candidates = [job_id for job_id, folder in folders.items() if folder.name not in referenced]
    expired = await _forget_results(sessions, candidates, cutoff)
    removed = await asyncio.to_thread(_remove_results, [folders[job_id] for job_id in sorted(expired)])
    removed += await asyncio.to_thread(
        _remove_uploads, data_dir / "uploads", referenced, (now - UPLOAD_GRACE).timestamp()
    )
    return PruneReport(removed)


async def _names_live_jobs_read(sessions: async_sessionmaker[AsyncSession], cutoff: datetime) -> set[str]:
    """File and folder names that live jobs' specs mention (an upload's name, a result's job-<id>).

    Every string in the spec counts, not only the image fields: a superset that cannot miss a
    field, needs no technique registry (torch) and reads specs written by older versions too.
    """
    live = or_(Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]), Job.finished_at >= cutoff)
    async with sessions() as session:
        specs = (await session.scalars(select(Job.spec).where(live))).all()
    names: set[str] = set()
    for spec in specs:
        for value in strings_in(spec):
            path = Path(value)
            names.update((path.name, path.parent.name))
    return names


def strings_in(value: Any) -> Iterator[str]:
    """Every string in a JSON value (a job's spec), however deep."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


async def _forget_results(sessions: async_sessionmaker[AsyncSession], job_ids: list[int],
                          cutoff: datetime) -> set[int]:
    """Marks the results of those jobs finished before `cutoff` as gone; returns their ids.

    One guarded update: a job that is not finished, or finished later, is left as it is.
    """
    expired: set[int] = set()
    async with sessions.begin() as session:
        for start in range(0, len(job_ids), IDS_PER_QUERY):
            chunk = job_ids[start:start + IDS_PER_QUERY]
            expired.update(await session.scalars(
                update(Job)
                .where(Job.id.in_(chunk), Job.status.in_(FINISHED), Job.finished_at < cutoff)
                .values(result_path=None, animation_path=None)
                .returning(Job.id)
            ))
    return expired


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    """The entries directly in `folder`; none when it is missing or is itself a symlink."""
    if folder.is_symlink() or not folder.is_dir():
        return []
    with os.scandir(folder) as entries:
        return list(entries)


def _result_folders(results: Path) -> dict[int, Path]:
    """The job-<id> folders in DATA_DIR/results by job id (real folders only, never symlinks)."""
    folders = {}
    for entry in _entries(results):
        match = RESULT_FOLDER.fullmatch(entry.name)
        if match and entry.is_dir(follow_symlinks=False):
            folders[int(match.group(1))] = Path(entry.path)
    return folders


def _remove_results(folders: Iterable[Path]) -> list[Removed]:
    removed = []
    for folder in folders:
        size = remove_tree(folder)
        if size is not None:
            removed.append(Removed("result", folder, size))
    return removed


def remove_tree(folder: Path) -> int | None:
    """Removes a folder and what is in it; the bytes freed, or None when it could not (logged).

    shutil.rmtree refuses a symlinked folder, and unlinks (never follows) the symlinks inside.
    """
    size = tree_size(folder)
    try:
        shutil.rmtree(folder)
    except OSError:
        log.warning("could not remove %s", folder, exc_info=True)
        return None
    return size


def _remove_uploads(uploads: Path, referenced: set[str], older_than: float) -> list[Removed]:
    """Removes the regular files in `uploads` that no live job names and that were stored before `older_than`."""
    removed = []
    for entry in _entries(uploads):
        if entry.name in referenced or not entry.is_file(follow_symlinks=False):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if info.st_mtime >= older_than:
                continue
            os.unlink(entry.path)
        except OSError:
            log.warning("could not remove the upload %s", entry.path, exc_info=True)
            continue
        removed.append(Removed("upload", Path(entry.path), info.st_size))
    return removed


def tree_size(path: Path) -> int:
    """Bytes in the files under `path`, or a file's own size; symlinks count as links, never followed."""
    size = _own_size(path)
    if not path.is_dir() or path.is_symlink():
        return size
    return sum(_own_size(Path(folder, name)) for folder, _, names in os.walk(path) for name in names)


def _own_size(path: Path) -> int:
    """A file's size, 0 for a folder or a file gone meanwhile (the worker writes while we count)."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return 0
    return 0 if stat.S_ISDIR(info.st_mode) else info.st_size


def sqlite_file(database_url: str) -> Path | None:
    """The SQLite database file of a URL, or None for another database or an in-memory one."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def data_size(data_dir: Path, database_url: str) -> DataSize:
    """The data folder's size by part (blocking: run it in a thread). A SQLite database counts with its journals."""
    database = sqlite_file(database_url)
    database_bytes = 0 if database is None else sum(
        tree_size(database.with_name(database.name + suffix)) for suffix in ("", "-wal", "-shm", "-journal")
    )
    return DataSize(
        total=tree_size(data_dir),
        uploads=tree_size(data_dir / "uploads"),
        results=tree_size(data_dir / "results"),
        database=database_bytes,
    )


def human_size(size_bytes: int) -> str:
    """Decimal units, as `weights list` shows them: "950 B", "1.5 kB", "12.0 MB", "3.2 GB"."""
    if size_bytes < 1000:
        return f"{size_bytes} B"
    size = float(size_bytes)
    for unit in ("kB", "MB", "GB"):
        size /= 1000
        if size < 1000:
            return f"{size:.1f} {unit}"
    return f"{size / 1000:.1f} TB"
