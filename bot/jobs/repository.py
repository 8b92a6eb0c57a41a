"""The jobs table: every read and write of jobs goes through here.

A job's status changes only through `transition`, which refuses illegal moves (a finished job
cannot become running) and is atomic: it updates the row only if it still has the old status.

Workers claim jobs with a lease (`claim_next`) and renew it while they run (`renew_lease`); a worker
records an outcome only while the job is still its own, so a job whose lease ran out and that another
worker picked up is never finished twice.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.jobs.scheduler import QueuedJob, fair_order
from bot.jobs.signals import JOBS_QUEUED, notify
from models import GuildSettings, Job, JobInput, JobStatus
from models.base import utcnow

ALLOWED_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.FAILED}),
    # RUNNING -> QUEUED only when the bot stops or crashes in the middle of a job.
    JobStatus.RUNNING: frozenset({JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.QUEUED}),
    JobStatus.DONE: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}
FINISHED = (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)
MAX_ATTEMPTS = 2  # a job that was running during two crashes fails instead of crashing the bot again

# Rough seconds per step before any job of a technique has finished here.
DEFAULT_SECONDS_PER_STEP = {"imagine": 0.2, "compare": 0.6, "style": 0.1, "dream": 0.1, "nca": 0.05, "cppn": 0.01}


class IllegalTransition(RuntimeError):
    pass


class JobRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self._seconds_per_step: dict[str, float] | None = None  # read once, then updated as jobs finish

    async def add(self, job: Job, inputs: dict[str, bytes] | None = None) -> Job:
        """Stores a queued job with its input images' bytes (a worker on another machine reads them)."""
        async with self.sessions.begin() as session:
            session.add(job)
            await session.flush()
            session.add_all(JobInput(job_id=job.id, field=field, data=data) for field, data in (inputs or {}).items())
            await notify(session, JOBS_QUEUED)  # wakes idle workers on other machines (PostgreSQL)
        return job

    async def announce_queued(self) -> None:
        """Wakes idle workers elsewhere: jobs may run now (a guild's queue resumed, say)."""
        async with self.sessions.begin() as session:
            await notify(session, JOBS_QUEUED)

    async def get(self, job_id: int) -> Job | None:
        async with self.sessions() as session:
            return await session.get(Job, job_id)

    async def transition(self, job_id: int, old: JobStatus, new: JobStatus, *,
                         only_if: ColumnElement[bool] | None = None, **fields: Any) -> Job:
        """Moves a job from `old` to `new` (and sets `fields`), or raises IllegalTransition.

        `only_if` is a further condition on the row, such as "still this worker's" or "its lease ran out".
        """
        if new not in ALLOWED_TRANSITIONS[old]:
            raise IllegalTransition(f"job {job_id}: {old} -> {new} is not allowed")
        if new in FINISHED:
            fields.setdefault("finished_at", utcnow())
        if old == JobStatus.RUNNING:
            fields.setdefault("lease_expires_at", None)
        guard = Job.status == old if only_if is None else (Job.status == old) & only_if
        async with self.sessions.begin() as session:
            job = await session.scalar(
                update(Job).where(Job.id == job_id, guard).values(status=new, **fields).returning(Job)
            )
            if job is not None and new in FINISHED:
                await session.execute(delete(JobInput).where(JobInput.job_id == job_id))  # no worker reads them now
            if job is None:
                current = await session.scalar(select(Job.status).where(Job.id == job_id))
                reason = f"is {current}, not {old}" if current != old else "is no longer as expected"
                raise IllegalTransition(f"job {job_id} {reason}: cannot make it {new}")
        if new == JobStatus.DONE:
            self._learn_speed(job)
        return job

    async def update_views(self, job_id: int, **message_ids: int | None) -> None:
        """Records the Discord thread and messages that show a job (thread_id, status_message_id, ...)."""
        allowed = {"thread_id", "status_message_id", "keyframes_posted", "final_message_id",
                   "failure_notice_message_id"}
        if not set(message_ids) <= allowed:
            raise ValueError(f"not a view field: {sorted(set(message_ids) - allowed)}")
        async with self.sessions.begin() as session:
            await session.execute(update(Job).where(Job.id == job_id).values(**message_ids))

    async def queued_in_order(self, *, skip_paused: bool = True,
                              skip_techniques: Collection[str] = ()) -> list[QueuedJob]:
        """The queued jobs in the order they will run (without the jobs of paused guilds)."""
        query = (
            select(Job.id, Job.guild_id, Job.user_id, Job.host_lane, Job.created_at, Job.technique, Job.total_steps)
            .where(Job.status == JobStatus.QUEUED)
        )
        if skip_techniques:
            query = query.where(Job.technique.not_in(skip_techniques))
        if skip_paused:
            paused_guilds = select(GuildSettings.guild_id).where(GuildSettings.queue_paused)
            query = query.where(or_(Job.guild_id.is_(None), Job.guild_id.not_in(paused_guilds)))
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
            last_started_by_user = await _last_started(session, Job.user_id, {job.user_id for job in rows})
            last_started_by_guild = await _last_started(session, Job.guild_id, {job.guild_id for job in rows})
        seconds_per_step = await self.seconds_per_step()
        queued = [
            QueuedJob(
                id=job.id, guild_id=job.guild_id, user_id=job.user_id, host_lane=job.host_lane,
                created_at=job.created_at, estimated_seconds=job.total_steps * seconds_per_step.get(job.technique, 0.1),
            )
            for job in rows
        ]
        return fair_order(queued, last_started_by_user, last_started_by_guild)

    async def claim_next(self, worker_id: str, lease: timedelta, skip_techniques: Collection[str] = ()) -> Job | None:
        """Marks the next job running for this worker, with a lease, and returns it; None when nothing waits.

        A worker that cannot run some techniques (training, on a machine without the bot's disk) skips them.

        Each candidate is locked with FOR UPDATE SKIP LOCKED (PostgreSQL): a job another worker is claiming
        at this moment is skipped rather than waited for, and the guarded update makes one of two claims win.
        """
        for candidate in await self.queued_in_order(skip_techniques=skip_techniques):
            free = (select(Job.id).where(Job.id == candidate.id, Job.status == JobStatus.QUEUED)
                    .with_for_update(skip_locked=True).scalar_subquery())
            now = utcnow()
            async with self.sessions.begin() as session:
                job = await session.scalar(
                    update(Job).where(Job.id == free, Job.status == JobStatus.QUEUED)
                    .values(status=JobStatus.RUNNING, started_at=now, attempts=Job.attempts + 1, worker_id=worker_id,
                            lease_expires_at=now + lease, cancel_requested=False, progress_step=0)
                    .returning(Job)
                )
            if job is not None:
                return job
            # else cancelled, or claimed by another worker, since the queue was read
        return None

    async def renew_lease(self, job_id: int, worker_id: str, lease: timedelta, step: int) -> bool | None:
        """Extends this worker's lease on its running job and records its step.

        Returns whether a cancel was asked for, or None when the job is no longer this worker's.
        """
        async with self.sessions.begin() as session:
            return await session.scalar(
                update(Job).where(Job.id == job_id, Job.worker_id == worker_id, Job.status == JobStatus.RUNNING)
                .values(lease_expires_at=utcnow() + lease, progress_step=step).returning(Job.cancel_requested)
            )

    async def request_cancel(self, job_id: int) -> bool:
        """Asks the worker running a job to stop it (it reads this when it renews its lease).

        False when no worker holds a live lease on it.
        """
        async with self.sessions.begin() as session:
            asked = await session.scalar(
                update(Job).where(Job.id == job_id, Job.status == JobStatus.RUNNING, Job.lease_expires_at > utcnow())
                .values(cancel_requested=True).returning(Job.id)
            )
        return asked is not None

    async def recover_interrupted(self, *, only_expired: bool = True) -> tuple[list[Job], list[Job], list[Job]]:
        """Running jobs whose worker is gone: their leases ran out (or, with `only_expired=False` at the
        start of the one worker a SQLite bot has, all of them). Each goes back to the queue, or is cancelled
        if someone asked, or fails after a second interruption.

        Returns (requeued, failed, cancelled).
        """
        query = select(Job).where(Job.status == JobStatus.RUNNING)
        gone = or_(Job.lease_expires_at.is_(None), Job.lease_expires_at <= utcnow())
        if only_expired:
            query = query.where(gone)
        async with self.sessions() as session:
            running = (await session.execute(query.order_by(Job.id))).scalars().all()
        requeued, failed, cancelled = [], [], []
        for job in running:
            still_gone = gone if only_expired else None  # a worker may have renewed since the read
            try:
                if job.cancel_requested:
                    cancelled.append(await self.transition(job.id, JobStatus.RUNNING, JobStatus.CANCELLED,
                                                           only_if=still_gone))
                elif job.attempts >= MAX_ATTEMPTS:
                    failed.append(await self.transition(
                        job.id, JobStatus.RUNNING, JobStatus.FAILED, only_if=still_gone,
                        error="Its worker stopped twice while this job ran, so it was not tried a third time.",
                    ))
                else:
                    requeued.append(await self.transition(job.id, JobStatus.RUNNING, JobStatus.QUEUED,
                                                          only_if=still_gone))
            except IllegalTransition:
                continue  # finished or renewed meanwhile
        return requeued, failed, cancelled

    async def undelivered(self, since: timedelta = timedelta(days=1)) -> list[Job]:
        """Jobs finished lately whose result (done) or failure notice (failed) was never posted."""
        async with self.sessions() as session:
            query = select(Job).where(
                Job.finished_at >= utcnow() - since,
                or_(
                    (Job.status == JobStatus.DONE) & Job.final_message_id.is_(None),
                    (Job.status == JobStatus.FAILED) & Job.failure_notice_message_id.is_(None),
                ),
            ).order_by(Job.id)
            return list((await session.execute(query)).scalars().all())

    async def count_with_status(self, status: JobStatus, *, user_id: int | None = None) -> int:
        query = select(func.count()).select_from(Job).where(Job.status == status)
        if user_id is not None:
            query = query.where(Job.user_id == user_id)
        async with self.sessions() as session:
            return await session.scalar(query) or 0

    async def running(self) -> list[Job]:
        """The jobs that workers are running now, oldest first."""
        async with self.sessions() as session:
            return list(await session.scalars(select(Job).where(Job.status == JobStatus.RUNNING).order_by(Job.id)))

    async def active_for_user(self, user_id: int) -> list[Job]:
        async with self.sessions() as session:
            query = (select(Job).where(Job.user_id == user_id, Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
                     .order_by(Job.id))
            return list((await session.execute(query)).scalars().all())

    async def seconds_per_step(self) -> dict[str, float]:
        """Average seconds per step of each technique over its last finished jobs here (kept until the next)."""
        if self._seconds_per_step is None:
            async with self.sessions() as session:
                rows = (await session.execute(
                    select(Job.technique, Job.metrics).where(Job.status == JobStatus.DONE, Job.metrics.is_not(None))
                    .order_by(Job.id.desc()).limit(50)
                )).all()
            self._seconds_per_step = average_seconds_per_step(rows)
        return self._seconds_per_step

    def _learn_speed(self, job: Job) -> None:
        """Moves the technique's seconds-per-step estimate a fifth of the way to this job's figure."""
        seconds, steps = seconds_and_steps(job.metrics)
        if self._seconds_per_step is None or not seconds or not steps:
            return
        old = self._seconds_per_step.get(job.technique, seconds / steps)
        self._seconds_per_step[job.technique] = 0.8 * old + 0.2 * seconds / steps


def seconds_and_steps(metrics: dict[str, Any] | None) -> tuple[float | None, int | None]:
    """A finished job's run time and steps done, as the worker recorded them."""
    return (metrics or {}).get("seconds"), (metrics or {}).get("steps_done")


def average_seconds_per_step(rows: list) -> dict[str, float]:
    """Seconds per step by technique from (technique, metrics) rows, defaults for the others."""
    estimates = dict(DEFAULT_SECONDS_PER_STEP)
    totals: dict[str, tuple[float, int]] = {}
    for technique, metrics in rows:
        seconds, steps = seconds_and_steps(metrics)
        if seconds and steps:
            total_seconds, total_steps = totals.get(technique, (0.0, 0))
            totals[technique] = (total_seconds + seconds, total_steps + steps)
    for technique, (seconds, steps) in totals.items():
        estimates[technique] = seconds / steps
    return estimates


async def _last_started(session: AsyncSession, column: Any, keys: set[Any]) -> dict[Any, datetime]:
    """When a job of each of `keys` (users, or guilds with None for DMs) last started."""
    if not keys:
        return {}
    match = column.in_([key for key in keys if key is not None])
    if None in keys:
        match = or_(match, column.is_(None))
    rows = await session.execute(
        select(column, func.max(Job.started_at)).where(match, Job.started_at.is_not(None)).group_by(column)
    )
    return {key: _aware(at) for key, at in rows.all()}


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
