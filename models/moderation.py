from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow


class BlockedTerm(Base):
    """A word, phrase or regex that a guild's hosts refuse in prompts.

    `kind` is "word" (stored normalised, so that duplicates differing only in case or spacing are caught)
    or "pattern" (a Python regex, stored as typed).
    """

    __tablename__ = "blocked_terms"
    __table_args__ = (UniqueConstraint("guild_id", "kind", "value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guild_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(200))
    added_by: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ModerationEvent(Base):
    """A refused prompt, kept so hosts can see what was blocked and for whom."""

    __tablename__ = "moderation_events"
    __table_args__ = (Index("ix_moderation_events_guild_created", "guild_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guild_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int] = mapped_column(BigInteger)
    channel_id: Mapped[int] = mapped_column(BigInteger)
    prompt: Mapped[str] = mapped_column(Text)
    matched: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
