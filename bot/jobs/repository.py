"""The jobs table: every read and write of jobs goes through here."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Job, JobStatus


class JobRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def count_with_status(self, status: JobStatus) -> int:
        async with self.sessions() as session:
            return await session.scalar(select(func.count()).select_from(Job).where(Job.status == status)) or 0
