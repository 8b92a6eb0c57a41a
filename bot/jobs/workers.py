"""Workers: the lease by which each holds its job, and the record of running workers (for /about)."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Job, Worker
from models.base import utcnow

if TYPE_CHECKING:
    from bot.jobs.worker import GpuWorker  # torch: only the runner's process needs it

FORGET_AFTER = timedelta(days=1)  # a worker that vanished without a word is dropped from the table


@dataclass(frozen=True)
class Lease:
    """How long a claim holds without renewal, and how often the runner renews it (and reads cancels)."""

    seconds: float = 30.0

    @property
    def length(self) -> timedelta:
        return timedelta(seconds=self.seconds)

    @property
    def renew_every(self) -> float:
        return min(3.0, self.seconds / 4)


def new_worker_id() -> str:
    """Unique per process: the machine, the process and a random part (two workers may share a machine)."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class WorkerSummary:
    name: str
    device: str
    models: str
    job: Job | None  # what it runs now


class WorkerRegistry:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], worker_id: str | None = None) -> None:
        self.sessions = sessions
        self.worker_id = worker_id or new_worker_id()

    async def register(self, gpu: GpuWorker, name: str | None) -> None:
        """Records this worker: `name` (WORKER_NAME) or the machine's, its device and its models."""
        now = utcnow()
        name = name or socket.gethostname()
        async with self.sessions.begin() as session:
            await session.execute(delete(Worker).where(Worker.last_seen_at < now - FORGET_AFTER))
            session.add(Worker(id=self.worker_id, name=name[:100], device=str(gpu.device)[:32],
                               models="; ".join(gpu.describe()), started_at=now, last_seen_at=now))

    async def heartbeat(self, current_job_id: int | None) -> None:
        async with self.sessions.begin() as session:
            await session.execute(update(Worker).where(Worker.id == self.worker_id)
                                  .values(last_seen_at=utcnow(), current_job_id=current_job_id))

    async def remove(self) -> None:
        async with self.sessions.begin() as session:
            await session.execute(delete(Worker).where(Worker.id == self.worker_id))


async def live_workers(sessions: async_sessionmaker[AsyncSession], seen_within: timedelta) -> list[WorkerSummary]:
    """The workers heard from lately, each with the job it runs."""
    async with sessions() as session:
        rows = (await session.execute(
            select(Worker, Job).outerjoin(Job, (Job.id == Worker.current_job_id) & (Job.worker_id == Worker.id))
            .where(Worker.last_seen_at >= utcnow() - seen_within).order_by(Worker.started_at)
        )).all()
    return [WorkerSummary(worker.name, worker.device, worker.models, job) for worker, job in rows]
