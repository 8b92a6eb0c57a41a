"""The course: lessons and exercises loaded from `course/*.md`, a guild's lesson runs, submissions, reviews."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Enum, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow


class Lesson(Base):
    """A lesson as last synced from its file. A lesson whose file was removed is hidden, never deleted,
    so the submissions to its exercises are kept. The slug is its identity; the number may change."""

    __tablename__ = "lessons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    links: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    content_hash: Mapped[str] = mapped_column(String(64))
    hidden: Mapped[bool] = mapped_column(default=False)
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Exercise(Base):
    """One exercise of a lesson; `id` is the id written in the lesson's file."""

    __tablename__ = "exercises"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    lesson_id: Mapped[int] = mapped_column(ForeignKey("lessons.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    brief: Mapped[str] = mapped_column(Text)
    technique: Mapped[str] = mapped_column(String(32))
    preset: Mapped[dict[str, Any]] = mapped_column(JSON)  # the job's options, without its input images
    images: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # input image field -> a course file
    submit_hint: Mapped[str] = mapped_column(Text)
    hidden: Mapped[bool] = mapped_column(default=False)


class LessonRun(Base):
    """A lesson a host opened in a guild: its announcement and thread. At most one is open per guild."""

    __tablename__ = "lesson_runs"
    __table_args__ = (
        Index("uq_lesson_runs_open_per_guild", "guild_id", unique=True,
              sqlite_where=text("ended_at IS NULL"), postgresql_where=text("ended_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guild_id: Mapped[int] = mapped_column(BigInteger)
    lesson_id: Mapped[int] = mapped_column(ForeignKey("lessons.id"), index=True)
    channel_id: Mapped[int] = mapped_column(BigInteger)
    thread_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    announcement_message_id: Mapped[int | None] = mapped_column(BigInteger)
    started_by: Mapped[int | None] = mapped_column(BigInteger)  # None once that host asked to be forgotten
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SubmissionStatus(enum.StrEnum):
    SUBMITTED = "submitted"  # waiting for a host
    APPROVED = "approved"
    REVISE = "revise"  # a host asked for another try


class Submission(Base):
    """A person's work for an exercise in a guild. Submitting again adds a row; only one is `latest`."""

    __tablename__ = "submissions"
    __table_args__ = (
        # The database itself keeps one latest submission per person and exercise in a guild.
        Index("uq_submissions_latest", "guild_id", "user_id", "exercise_id", unique=True,
              sqlite_where=text("latest"), postgresql_where=text("latest")),
        Index("ix_submissions_guild_status", "guild_id", "status", "created_at"),
        {"sqlite_autoincrement": True},  # a removed submission's id (its file name, its buttons) is never reused
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guild_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    exercise_id: Mapped[str] = mapped_column(ForeignKey("exercises.id"), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    recipe: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the job's spec, kept when the job is pruned
    image_path: Mapped[str | None] = mapped_column(String(500))  # None once the file is removed
    note: Mapped[str | None] = mapped_column(Text)
    status: Mapped[SubmissionStatus] = mapped_column(
        Enum(SubmissionStatus, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
        default=SubmissionStatus.SUBMITTED,
    )
    latest: Mapped[bool] = mapped_column(default=True)
    posted_channel_id: Mapped[int | None] = mapped_column(BigInteger)
    posted_message_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Review(Base):
    """A host's decision on a submission, with the feedback the student was sent."""

    __tablename__ = "reviews"
    __table_args__ = (CheckConstraint("decision IN ('approved', 'revise')", name="decision"),
                      {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    reviewer_id: Mapped[int | None] = mapped_column(BigInteger)  # None once that host asked to be forgotten
    decision: Mapped[SubmissionStatus] = mapped_column(
        Enum(SubmissionStatus, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
    )
    feedback: Mapped[str | None] = mapped_column(Text)
    told_by: Mapped[str | None] = mapped_column(String(16))  # "dm", "thread", or None if neither reached them
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
