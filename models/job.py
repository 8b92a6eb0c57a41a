from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Enum, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Job(Base):
    """One generation job. The row exists before anything else happens; Discord messages are views of it."""

    __tablename__ = "jobs"
    # AUTOINCREMENT: a deleted job's id is never given again (buttons, result folders and `job:123` name it).
    __table_args__ = (Index("ix_jobs_status_created", "status", "created_at"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guild_id: Mapped[int | None] = mapped_column(BigInteger)  # None for a direct message
    channel_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    technique: Mapped[str] = mapped_column(String(32))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(String(100))  # short text for thread names and lists
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
        default=JobStatus.QUEUED,
    )
    host_lane: Mapped[bool] = mapped_column(default=False)  # a host's live demo goes first
    parent_job_id: Mapped[int | None] = mapped_column(Integer)  # re-roll, continue and remix
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # runs started; a second crash fails the job
    progress_step: Mapped[int] = mapped_column(Integer, default=0)
    total_steps: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    result_path: Mapped[str | None] = mapped_column(String(500))
    animation_path: Mapped[str | None] = mapped_column(String(500))
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    # The Discord messages that show this job, so a restart never re-posts or re-pings.
    thread_id: Mapped[int | None] = mapped_column(BigInteger)
    status_message_id: Mapped[int | None] = mapped_column(BigInteger)
    keyframes_posted: Mapped[int] = mapped_column(Integer, default=0)
    final_message_id: Mapped[int | None] = mapped_column(BigInteger)
    failure_notice_message_id: Mapped[int | None] = mapped_column(BigInteger)

    # Who runs it: a worker claims a job with a lease that it renews while it runs. A lease that runs out
    # (the worker died) puts the job back in the queue; a cancel asked for on another machine waits here.
    worker_id: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_requested: Mapped[bool] = mapped_column(default=False, server_default=false())

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
