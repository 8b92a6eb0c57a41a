"""A tiny key-value store in the database for facts the bot keeps about itself."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import AppState


class AppStateStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def get(self, key: str) -> str | None:
        async with self.sessions() as session:
            row = await session.get(AppState, key)
            return row.value if row else None

    async def set(self, key: str, value: str) -> None:
        async with self.sessions.begin() as session:
            row = await session.get(AppState, key)
            if row is None:
                session.add(AppState(key=key, value=value))
            else:
                row.value = value
