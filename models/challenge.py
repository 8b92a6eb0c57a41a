"""Community challenges: a theme and deadlines, members' blind entries, one vote per member, winners."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow


class ChallengePhase(enum.StrEnum):
    OPEN = "open"  # taking entries, which only their authors see
    VOTING = "voting"  # entries shown, numbered and without authors; members vote
    CLOSED = "closed"  # authors revealed, ranked, points given
    CANCELLED = "cancelled"


def _phase_column(**options: Any) -> Any:
    return mapped_column(
        Enum(ChallengePhase, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]), **options)


class Challenge(Base):
    """A challenge in a guild. Its phase changes only through `ChallengeService.transition`; `published_phase`
    is the phase whose posts are all out, so a restart finishes what a phase change left unposted."""

    __tablename__ = "challenges"
    __table_args__ = (
        CheckConstraint("voting_close_at >= submissions_close_at", name="deadlines_in_order"),
        CheckConstraint("entries_per_member >= 1", name="entries_per_member"),
        Index("ix_challenges_guild_phase", "guild_id", "phase"),
        {"sqlite_autoincrement": True},  # a challenge's id (in buttons and commands) is never reused
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guild_id: Mapped[int] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(String(100))
    theme: Mapped[str] = mapped_column(Text)
    phase: Mapped[ChallengePhase] = _phase_column(default=ChallengePhase.OPEN)
    published_phase: Mapped[ChallengePhase | None] = _phase_column(nullable=True)
    submissions_close_at: Mapped[datetime] = mapped_column(UTCDateTime)
    voting_close_at: Mapped[datetime] = mapped_column(UTCDateTime)
    required_words: Mapped[list[str]] = mapped_column(JSON, default=list)  # each must be in a job entry's prompt
    techniques: Mapped[list[str]] = mapped_column(JSON, default=list)  # a job entry's technique; empty: any
    entries_per_member: Mapped[int] = mapped_column(Integer, default=1)
    uploads_allowed: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[int | None] = mapped_column(BigInteger)  # None once that host asked to be forgotten
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # The Discord posts that show it, each stored before the next is made, so a restart never posts twice.
    channel_id: Mapped[int] = mapped_column(BigInteger)
    announcement_message_id: Mapped[int | None] = mapped_column(BigInteger)
    thread_id: Mapped[int | None] = mapped_column(BigInteger)
    voting_sheet_message_id: Mapped[int | None] = mapped_column(BigInteger)
    final_message_id: Mapped[int | None] = mapped_column(BigInteger)  # the results, or the cancellation


class ChallengeEntry(Base):
    """One entry: a member's `slot`-th (of `entries_per_member`). Replacing an entry replaces its row."""

    __tablename__ = "challenge_entries"
    __table_args__ = (
        UniqueConstraint("challenge_id", "user_id", "slot", name="uq_challenge_entries_slot"),
        UniqueConstraint("challenge_id", "number", name="uq_challenge_entries_number"),
        {"sqlite_autoincrement": True},  # vote buttons name entries by id: a removed one's id is never reused
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    slot: Mapped[int] = mapped_column(Integer)
    title: Mapped[str | None] = mapped_column(String(100))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    recipe: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the job's spec, kept when the job is pruned
    image_path: Mapped[str | None] = mapped_column(String(500))
    number: Mapped[int | None] = mapped_column(Integer)  # its public number, given when voting opens
    vote_message_id: Mapped[int | None] = mapped_column(BigInteger)  # its post with the vote button
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChallengeVote(Base):
    """A member's one vote in a challenge (the primary key makes it one); changing it moves `entry_id`."""

    __tablename__ = "challenge_votes"

    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"), primary_key=True)
    voter_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    entry_id: Mapped[int] = mapped_column(ForeignKey("challenge_entries.id", ondelete="CASCADE"), index=True)
    voted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
