"""The bot's side of workers on other machines: it posts what they report and takes back jobs from dead ones.

Workers write `job_events` rows (bot/jobs/events.py); the relay reads them in order, hands each to the
publisher, and deletes them. A NOTIFY wakes it at once on PostgreSQL; on SQLite it polls. It also puts
back in the queue the jobs whose worker stopped renewing its lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from typing import TYPE_CHECKING

from PIL import Image
from sqlalchemy import delete, select

from bot.jobs.events import CANCELLED, DONE, FAILED, PROGRESS, REQUEUED, STARTED
from bot.jobs.ordered import UpdatesInOrder
from bot.jobs.runner import SHUTDOWN_VIEWS_SECONDS
from bot.jobs.signals import JOB_EVENTS, listening
from bot.jobs.worker import ProgressEvent
from models import JobEvent

if TYPE_CHECKING:
    from bot.client import Easel

log = logging.getLogger(__name__)

POLL_SECONDS = {"sqlite": 1.0, "postgresql": 10.0}  # PostgreSQL's NOTIFY wakes it sooner
EVENTS_PER_READ = 200


class JobEventRelay:
    def __init__(self, bot: Easel) -> None:
        self.bot = bot
        self.sessions = bot.sessions
        self.publisher = bot.publisher
        self._wake = asyncio.Event()
        self._updates = UpdatesInOrder("easel-relay")
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="easel-job-event-relay")

    async def stop(self) -> None:
        """Ends the loop after its current read (not cancelled mid-query: that would break the connection)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        await self._updates.wait(SHUTDOWN_VIEWS_SECONDS)

    async def _run(self) -> None:
        poll = POLL_SECONDS.get(self.bot.engine.dialect.name, 1.0)
        lease = self.bot.settings.worker_lease_seconds
        next_lease_check = 0.0
        async with listening(self.bot.settings.resolved_database_url, JOB_EVENTS, self._wake.set):
            while not self._stopping:
                self._wake.clear()
                try:
                    while await self.relay_once() == EVENTS_PER_READ:
                        pass
                    if asyncio.get_running_loop().time() >= next_lease_check:
                        await self.take_back_expired()
                        next_lease_check = asyncio.get_running_loop().time() + lease / 2
                except Exception:  # the database is away: try again at the next poll
                    log.warning("could not relay the workers' job events", exc_info=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), min(poll, lease / 2))

    async def relay_once(self) -> int:
        """Hands the waiting events to the publisher, in order, and deletes them; returns how many there were."""
        async with self.sessions() as session:
            events = list(await session.scalars(select(JobEvent).order_by(JobEvent.id).limit(EVENTS_PER_READ)))
        if not events:
            return 0
        newest_progress = {event.job_id: event.id for event in events if event.kind == PROGRESS}
        for event in events:
            if event.kind == PROGRESS and newest_progress[event.job_id] != event.id:
                continue  # a newer frame of the same job follows in this batch
            self._updates.add(event.job_id, self._dispatch(event))
        async with self.sessions.begin() as session:
            await session.execute(delete(JobEvent).where(JobEvent.id.in_([event.id for event in events])))
        return len(events)

    async def _dispatch(self, event: JobEvent) -> None:
        job = await self.bot.job_repository.get(event.job_id)
        if job is None:
            return
        if event.kind == STARTED:
            await self.publisher.job_started(job)
        elif event.kind == PROGRESS and event.preview_png is not None:
            preview = await asyncio.to_thread(lambda: Image.open(io.BytesIO(event.preview_png)).convert("RGB"))
            self.publisher.job_progress(job, ProgressEvent(job.id, event.step, event.total, preview,
                                                           dict(event.metrics or {})))
        elif event.kind == DONE:
            await self.publisher.job_done(job)
        elif event.kind == FAILED:
            await self.publisher.job_failed(job, job.error or "The job failed.")
        elif event.kind == CANCELLED:
            await self.publisher.job_cancelled(job)
        elif event.kind == REQUEUED:
            await self.publisher.job_requeued(job)

    async def take_back_expired(self) -> None:
        """Jobs whose worker stopped renewing its lease go back to the queue (or end); their posts say so."""
        requeued, failed, cancelled = await self.bot.job_repository.recover_interrupted(only_expired=True)
        if requeued or failed or cancelled:
            log.info("leases ran out: jobs %s back in the queue, %s failed, %s cancelled",
                     [job.id for job in requeued], [job.id for job in failed], [job.id for job in cancelled])
            self.bot.jobs.wake_workers()
        for job in requeued:
            self._updates.add(job.id, self.publisher.job_requeued(job))
        for job in failed:
            self._updates.add(job.id, self.publisher.job_failed(job, job.error or "The job failed."))
        for job in cancelled:
            self._updates.add(job.id, self.publisher.job_cancelled(job))
