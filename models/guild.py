from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow


class GuildSettings(Base):
    """What a guild's hosts configured with `/easel config`."""

    __tablename__ = "guild_settings"

    guild_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    host_role_id: Mapped[int | None] = mapped_column(BigInteger)
    workshop_channel_id: Mapped[int | None] = mapped_column(BigInteger)
    max_steps: Mapped[int | None] = mapped_column(Integer)
    max_size: Mapped[int | None] = mapped_column(Integer)
    queue_paused: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Member(Base):
    """A person seen in a guild; later features hang their progress on this row."""

    __tablename__ = "members"

    guild_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    display_name: Mapped[str] = mapped_column(String(100))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
