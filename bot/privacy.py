"""`/forget-me`: delete everything that belongs to a person, and take their name off what others keep.

What happens to each table is written down once, in REMOVED and ANONYMISED below; a table that a later
feature adds gets its line there. tests/test_privacy.py checks that every
column holding a user id (`user_id`, `*_by`, `reviewer_id`) is in one of the two lists.

The rows go in one transaction; a running job refuses the whole request (StillRunning) and nothing
changes. The files go after the commit, in a worker thread: the person's submission and challenge entry
images, their jobs' result folders, and the uploads their jobs read that no remaining job reads. Only what
lies directly in DATA_DIR/submissions, DATA_DIR/challenge-entries, DATA_DIR/uploads or DATA_DIR/results is
ever removed, whatever path a row holds, and no symlink is followed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, delete, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from bot.errors import UserFacingError
from bot.retention import IDS_PER_QUERY, human_size, remove_tree, strings_in
from models import (
    BlockedTerm,
    Challenge,
    ChallengeEntry,
    ChallengeVote,
    GanModel,
    Job,
    JobStatus,
    LessonRun,
    Member,
    ModerationEvent,
    Review,
    Submission,
)
from models.base import Base

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Removal:
    """Rows that are the person's own: deleted.

    `person` is the column that says whose a row is; for a row owned through its parent (a review of
    their submission) it is the parent's column, and `where` says how to reach it.
    """

    label: str  # the ForgetReport field that counts these rows
    noun: tuple[str, str]  # singular and plural, for the summary the person reads
    table: type[Base]
    person: InstrumentedAttribute[Any]
    where: Callable[[int], ColumnElement[bool]] | None = None  # default: `person == user_id`
    returning: tuple[InstrumentedAttribute[Any], ...] = ()  # what the clean-up after the commit needs

    def condition(self, user_id: int) -> ColumnElement[bool]:
        return self.where(user_id) if self.where is not None else self.person == user_id


@dataclass(frozen=True)
class Anonymisation:
    """A column of rows that others keep (a review they wrote, a lesson they ran): their id is replaced."""

    column: InstrumentedAttribute[Any]
    replacement: int | None  # None where the column allows it; 0 ("someone forgotten") where it does not


# ---------------------------------------------------------------------------------------------------------
# What /forget-me does, table by table. A new table that names a person gets its line here.
# Deleted in this order (rows before the rows they point at); each delete returns what the clean-up needs.
REMOVED: tuple[Removal, ...] = (
    # Reviews OF their submissions (the database would cascade them; deleted here so they are counted).
    Removal("reviews", ("review of your work", "reviews of your work"), Review, Submission.user_id,
            where=lambda user: Review.submission_id.in_(select(Submission.id).where(Submission.user_id == user))),
    Removal("submissions", ("submission", "submissions"), Submission, Submission.user_id,
            returning=(Submission.id, Submission.image_path, Submission.posted_channel_id,
                       Submission.posted_message_id)),
    Removal("challenge_votes", ("challenge vote", "challenge votes"), ChallengeVote, ChallengeVote.voter_id),
    # Votes others gave their entries go with the entries (the foreign key cascades): the counts follow.
    Removal("challenge_entries", ("challenge entry", "challenge entries"), ChallengeEntry, ChallengeEntry.user_id,
            returning=(ChallengeEntry.id, ChallengeEntry.image_path, ChallengeEntry.challenge_id,
                       ChallengeEntry.vote_message_id)),
    # Every status but running (StillRunning refuses that): the worker never loses a job under its feet.
    Removal("jobs", ("job", "jobs"), Job, Job.user_id,
            where=lambda user: and_(Job.user_id == user, Job.status != JobStatus.RUNNING),
            returning=(Job.id, Job.spec, Job.channel_id, Job.thread_id, Job.status_message_id, Job.final_message_id,
                       Job.failure_notice_message_id)),
    Removal("moderation_events", ("moderation record", "moderation records"), ModerationEvent,
            ModerationEvent.user_id),
    Removal("members", ("server membership", "server memberships"), Member, Member.user_id),
)

# Rows others keep, with the person's id taken off.
ANONYMISED: tuple[Anonymisation, ...] = (
    Anonymisation(Review.reviewer_id, None),  # reviews they wrote of others' submissions
    Anonymisation(LessonRun.started_by, None),  # lessons they opened as a host
    Anonymisation(Challenge.created_by, None),  # challenges they created as a host
    Anonymisation(GanModel.created_by, None),  # generators they trained as a host (the guild keeps them)
    Anonymisation(BlockedTerm.added_by, 0),  # terms they blocked as a host (the column is not nullable)
)
# ---------------------------------------------------------------------------------------------------------


def covered_columns() -> set[tuple[str, str]]:
    """(table, column) of every column that REMOVED or ANONYMISED handles; the tests compare it to the models."""
    attributes = [removal.person for removal in REMOVED] + [item.column for item in ANONYMISED]
    return {(column.table.name, column.name) for column in (_column(attribute) for attribute in attributes)}


class StillRunning(UserFacingError):
    """The person has a job the worker is running: forgetting waits until it has finished."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"Your job #{job_id} is running; cancel it with /cancel or wait for it to finish, "
                         "then try /forget-me again.")
        self.job_id = job_id


@dataclass(frozen=True)
class ForgetReport:
    jobs: int
    submissions: int
    reviews: int
    moderation_events: int
    members: int
    challenge_votes: int
    challenge_entries: int
    files: int  # files removed from the data folder (images, uploads, each file of a result folder)
    bytes_freed: int
    # (channel_id, message_id) of the bot's posts of their submissions and jobs, for the caller to delete.
    posted_messages: list[tuple[int, int]] = field(default_factory=list)
    anonymised: int = 0  # rows others keep that no longer name them

    def summary(self) -> str:
        """One sentence for the person, e.g. "Removed 3 jobs, 2 submissions and 1 review, and 7 files (1.2 MB of
        images); your name was taken off 2 records other people keep."."""
        nouns = {removal.label: removal.noun for removal in REMOVED}
        parts = [_counted(getattr(self, item.name), *nouns[item.name])
                 for item in fields(self) if item.name in nouns and getattr(self, item.name)]
        if self.files:
            parts.append(f"{_counted(self.files, 'file', 'files')} ({human_size(self.bytes_freed)} of images)")
        if not parts and not self.anonymised:
            return "Nothing about you was stored here, so there was nothing to remove."
        sentence = f"Removed {_listed(parts)}" if parts else "Nothing of yours was stored here"
        if self.anonymised:
            sentence += f"; your name was taken off {_counted(self.anonymised, 'record', 'records')} other people keep"
        return sentence + "."


async def forget_person(sessions: async_sessionmaker[AsyncSession], data_dir: Path, user_id: int) -> ForgetReport:
    """Deletes what belongs to `user_id`, anonymises what others keep, then removes their files.

    Raises StillRunning, changing nothing, while one of their jobs runs. Calling it again is harmless.
    """
    async with sessions.begin() as session:
        # The deletes come first: on SQLite the first write takes the database's write lock, so the check
        # below sees the truth (a worker's claim waits for our commit, then finds the job gone); on
        # PostgreSQL a job claimed meanwhile is left by the guarded delete of jobs and found by the check.
        deleted = {removal.label: await _delete(session, removal, user_id) for removal in REMOVED}
        running = await session.scalar(
            select(Job.id).where(Job.user_id == user_id, Job.status == JobStatus.RUNNING).order_by(Job.id).limit(1)
        )
        if running is not None:
            raise StillRunning(running)  # leaving the block rolls everything back
        anonymised = 0
        for item in ANONYMISED:
            anonymised += await _anonymise(session, item, user_id)
        removed_jobs = [row.id for row in deleted["jobs"]]
        await _unlink_children(session, removed_jobs)
        upload_paths = [value for row in deleted["jobs"] for value in strings_in(row.spec)]
        still_read = await _names_remaining_jobs_read(session) if upload_paths else set()
        entry_posts = await _entry_posts(session, deleted["challenge_entries"])

    submissions = deleted["submissions"]
    images = [("submissions", row.id, row.image_path) for row in submissions]
    images += [("challenge-entries", row.id, row.image_path) for row in deleted["challenge_entries"]]
    files, bytes_freed = await asyncio.to_thread(
        _remove_files, data_dir, removed_jobs, images, upload_paths, still_read,
    )
    counts = {label: len(rows) for label, rows in deleted.items()}
    report = ForgetReport(
        **counts, files=files, bytes_freed=bytes_freed, anonymised=anonymised,
        posted_messages=[(row.posted_channel_id, row.posted_message_id) for row in submissions
                         if row.posted_channel_id is not None and row.posted_message_id is not None]
        + [post for row in deleted["jobs"] for post in _job_posts(row)] + entry_posts,
    )
    log.info("forgot a person at their request: %s", report.summary())  # their id stays out of the log
    return report


async def _entry_posts(session: AsyncSession, entries: Sequence[Row[Any]]) -> list[tuple[int, int]]:
    """The posts of their entries in the challenges' threads, where voting showed them."""
    posted = [entry for entry in entries if entry.vote_message_id is not None]
    if not posted:
        return []
    threads = dict((await session.execute(select(Challenge.id, Challenge.thread_id).where(
        Challenge.id.in_({entry.challenge_id for entry in posted})))).all())
    return [(threads[entry.challenge_id], entry.vote_message_id) for entry in posted
            if threads.get(entry.challenge_id) is not None]


def _job_posts(job: Row[Any]) -> list[tuple[int, int]]:
    """The bot's messages showing a job: the thread's starter in the channel (a thread made from a message
    has that message's id), the status, the result and the failure notice in the thread."""
    where = job.thread_id or job.channel_id
    posts = [(job.channel_id, job.thread_id)] if job.thread_id not in (None, job.channel_id) else []
    posts += [(where, message_id) for message_id in (job.status_message_id, job.final_message_id,
                                                      job.failure_notice_message_id) if message_id is not None]
    return posts


async def _delete(session: AsyncSession, removal: Removal, user_id: int) -> Sequence[Row[Any]]:
    columns = removal.returning or tuple(inspect(removal.table).primary_key)
    statement = (
        delete(removal.table).where(removal.condition(user_id)).returning(*columns)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(statement)).all()


async def _anonymise(session: AsyncSession, item: Anonymisation, user_id: int) -> int:
    table = item.column.class_
    statement = (
        update(table).where(item.column == user_id).values({item.column.key: item.replacement})
        .returning(*inspect(table).primary_key).execution_options(synchronize_session=False)
    )
    return len((await session.execute(statement)).all())


async def _unlink_children(session: AsyncSession, job_ids: list[int]) -> None:
    """Others' re-rolls and remixes of the removed jobs no longer point at them: `parent_job_id` has no
    foreign key. (A submission's job_id is set to NULL by its own.)"""
    for start in range(0, len(job_ids), IDS_PER_QUERY):
        chunk = job_ids[start:start + IDS_PER_QUERY]
        await session.execute(
            update(Job).where(Job.parent_job_id.in_(chunk)).values(parent_job_id=None)
            .execution_options(synchronize_session=False)
        )


async def _names_remaining_jobs_read(session: AsyncSession) -> set[str]:
    """The file names that any remaining job's spec mentions: a superset of the uploads still needed (as
    in bot.retention, every string counts, so no field can be missed and no technique registry is needed)."""
    specs = (await session.scalars(select(Job.spec))).all()
    return {Path(value).name for spec in specs for value in strings_in(spec)}


def _column(attribute: InstrumentedAttribute[Any]) -> Any:
    return attribute.property.columns[0]


def _counted(count: int, singular: str, plural: str) -> str:
    return f"{count} {singular if count == 1 else plural}"


def _listed(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


# --- Files (blocking: run in a thread) --------------------------------------------------------------------


def _remove_files(data_dir: Path, job_ids: list[int], images: list[tuple[str, int, str | None]],
                  upload_paths: list[str], still_read: set[str]) -> tuple[int, int]:
    """Removes the files of the forgotten rows; returns (files removed, bytes freed)."""
    files = bytes_freed = 0
    results = data_dir / "results"
    if _is_real_folder(results):
        for job_id in job_ids:
            removed = _remove_folder(results / f"job-{job_id}")  # a name we build: it cannot leave `results`
            files, bytes_freed = files + removed[0], bytes_freed + removed[1]
    for folder_name, row_id, image_path in images:  # (folder, the row's id, the path the row holds)
        folder = data_dir / folder_name
        target = _directly_in(folder, image_path) if image_path else None
        # Only the row's own file, <id>.<ext>: a row naming someone else's image leaves it alone.
        if target is not None and target.name.split(".", 1)[0] == str(row_id):
            removed = _remove_file(target)
            files, bytes_freed = files + removed[0], bytes_freed + removed[1]
        elif image_path:
            log.warning("a forgotten image path is not its row's own file in %s; left alone", folder)
    uploads = data_dir / "uploads"
    seen: set[Path] = set()
    for value in upload_paths:
        target = _directly_in(uploads, value)
        if target is None or target in seen or target.name in still_read:
            continue  # not an upload (a prompt, a result, a hostile path), or another job still reads it
        seen.add(target)
        removed = _remove_file(target)
        files, bytes_freed = files + removed[0], bytes_freed + removed[1]
    return files, bytes_freed


def _is_real_folder(folder: Path) -> bool:
    return not folder.is_symlink() and folder.is_dir()


def _directly_in(folder: Path, path: str) -> Path | None:
    """`folder / name` when `path` names an entry directly in `folder` (its parent resolved, `..` and symlinks
    included); None for anything else, and when `folder` itself is a symlink or missing."""
    candidate = Path(path)
    if candidate.name in ("", ".", "..") or not _is_real_folder(folder):
        return None
    try:
        if candidate.parent.resolve(strict=True) != folder.resolve(strict=True):
            return None
    except (OSError, RuntimeError):  # missing, unreadable, or a symlink loop
        return None
    return folder / candidate.name


def _remove_file(path: Path) -> tuple[int, int]:
    """Unlinks a regular file (never a symlink's target, never a folder); returns (1, size) or (0, 0)."""
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode):
            return 0, 0
        path.unlink()
    except FileNotFoundError:
        return 0, 0
    except OSError:
        log.warning("could not remove %s", path, exc_info=True)
        return 0, 0
    return 1, info.st_size


def _remove_folder(folder: Path) -> tuple[int, int]:
    """Removes a real folder and what is in it (symlinks inside are unlinked, never followed)."""
    if not _is_real_folder(folder):
        return 0, 0
    files = sum(len(names) + sum(Path(parent, name).is_symlink() for name in folders)
                for parent, folders, names in os.walk(folder))
    size = remove_tree(folder)
    return (0, 0) if size is None else (files, size)
