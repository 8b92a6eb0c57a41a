"""Job events: how a worker on another machine tells the bot what happened to a job.

`DatabaseViews` is that worker's `JobViews`: each change becomes a `job_events` row, and a NOTIFY
wakes the bot (see bot/ui/relay.py), which posts it and deletes the row. Progress is coalesced: at
most one row per job every PROGRESS_SECONDS, carrying the newest preview, so a fast technique does
not flood the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.art.imagefiles import png_bytes
from bot.jobs.signals import JOB_EVENTS, notify
from bot.jobs.worker import JobOutput, ProgressEvent
from models import Job, JobEvent

log = logging.getLogger(__name__)

PROGRESS_SECONDS = 1.0
STARTED, PROGRESS, DONE, FAILED, CANCELLED, REQUEUED = "started", "progress", "done", "failed", "cancelled", "requeued"


class DatabaseViews:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], progress_seconds: float = PROGRESS_SECONDS) -> None:
        self.sessions = sessions
        self.progress_seconds = progress_seconds
        self._latest: dict[int, ProgressEvent] = {}  # job id -> its newest progress not yet written
        self._writes = asyncio.Lock()  # rows go in the order things happened
        self._flusher: asyncio.Task[None] | None = None

    async def job_started(self, job: Job) -> None:
        await self._write(job.id, STARTED, total=job.total_steps)

    def job_progress(self, job: Job, event: ProgressEvent) -> None:
        self._latest[job.id] = event
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_every_while(), name="easel-progress-events")

    async def job_done(self, job: Job) -> None:
        await self._write(job.id, DONE)

    async def job_failed(self, job: Job, message: str) -> None:
        await self._write(job.id, FAILED)  # the message is the job row's `error`

    async def job_cancelled(self, job: Job) -> None:
        await self._write(job.id, CANCELLED)

    async def job_requeued(self, job: Job) -> None:
        await self._write(job.id, REQUEUED)

    async def job_chunk_done(self, job: Job, output: JobOutput) -> None:
        """Workers that keep no state between chunks claim no chunked jobs; were one to end a chunk, the bot
        would show it as back in the queue."""
        await self._write(job.id, REQUEUED)

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher

    async def _flush_every_while(self) -> None:
        while self._latest:
            await asyncio.sleep(self.progress_seconds)
            for job_id in list(self._latest):
                try:
                    await self._write(job_id, PROGRESS)
                except Exception:  # the database is away: the next progress tries again
                    log.warning("could not write job %s's progress", job_id, exc_info=True)

    async def _write(self, job_id: int, kind: str, total: int = 0) -> None:
        """Writes the job's pending progress first (so it comes before its end), then this event."""
        async with self._writes:
            progress = self._latest.pop(job_id, None)
            rows = []
            if progress is not None:
                preview = await asyncio.to_thread(png_bytes, progress.preview)
                rows.append(JobEvent(job_id=job_id, kind=PROGRESS, step=progress.step, total=progress.total,
                                     metrics=progress.metrics, preview_png=preview))
            if kind != PROGRESS:
                rows.append(JobEvent(job_id=job_id, kind=kind, total=total))
            if not rows:
                return
            async with self.sessions.begin() as session:
                session.add_all(rows)
                await notify(session, JOB_EVENTS)
