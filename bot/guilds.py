"""Guild settings: who hosts, where the workshop happens, the guild's limits."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import GuildSettings


@dataclass(frozen=True)
class GuildConfig:
    guild_id: int
    host_role_id: int | None = None
    workshop_channel_id: int | None = None
    max_steps: int | None = None
    max_size: int | None = None
    queue_paused: bool = False

    @classmethod
    def from_row(cls, row: GuildSettings) -> GuildConfig:
        return cls(
            guild_id=row.guild_id,
            host_role_id=row.host_role_id,
            workshop_channel_id=row.workshop_channel_id,
            max_steps=row.max_steps,
            max_size=row.max_size,
            queue_paused=row.queue_paused,
        )

    def is_host(self, *, manage_guild: bool, role_ids: Iterable[int]) -> bool:
        """A host has Manage Server or the configured host role."""
        return manage_guild or (self.host_role_id is not None and self.host_role_id in set(role_ids))


class GuildService:
    """Reads and changes guild settings. Every command reads them and hosts rarely change them, so they are
    kept in memory; `update` (the only writer, in the bot's process) refreshes what is kept."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self._cache: dict[int, GuildConfig] = {}
        self._updates = 0  # counts updates, so that a read that raced one is not kept

    async def get(self, guild_id: int) -> GuildConfig:
        cached = self._cache.get(guild_id)
        if cached is not None:
            return cached
        updates_before = self._updates
        async with self.sessions() as session:
            row = await session.get(GuildSettings, guild_id)
            config = GuildConfig.from_row(row) if row else GuildConfig(guild_id=guild_id)
        if self._updates == updates_before:
            self._cache[guild_id] = config
        return config

    async def update(self, guild_id: int, **changes: object) -> GuildConfig:
        """Sets the given fields (for example `host_role_id=...`) and returns the new config."""
        unknown = set(changes) - set(GuildConfig.__dataclass_fields__) - {"guild_id"}
        if unknown:
            raise TypeError(f"unknown guild settings: {sorted(unknown)}")
        async with self.sessions.begin() as session:
            row = await session.get(GuildSettings, guild_id)
            if row is None:
                row = GuildSettings(guild_id=guild_id)
                session.add(row)
            for name, value in changes.items():
                setattr(row, name, value)
            await session.flush()
            config = GuildConfig.from_row(row)
        self._updates += 1
        self._cache[guild_id] = config
        return config
