"""GPU workers and what they send the bot: the tables through which a worker on another machine talks to it.

A worker never talks to Discord and shares no disk with the bot. A job's input images travel to it as
`JobInput` rows, written when the job is queued and deleted when it finishes. The worker writes what
happened to a job (`JobEvent`, with a preview image's bytes) and a finished job's files (`JobOutput`)
into the database; the bot posts them and deletes the rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow


class Worker(Base):
    """A running worker process, seen lately (`last_seen_at`); /about lists them."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # host, process and a random part
    name: Mapped[str] = mapped_column(String(100))  # what hosts read: the machine's name, or WORKER_NAME
    device: Mapped[str] = mapped_column(String(32))
    models: Mapped[str] = mapped_column(Text, default="")
    current_job_id: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JobEvent(Base):
    """Something a worker did with a job, in order (`id`): started, progress, done, failed, cancelled, requeued."""

    __tablename__ = "job_events"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    step: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    preview_png: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JobOutput(Base):
    """One file of a finished job (final.png, steps.gif, loss.png), until the bot has stored it and posted it."""

    __tablename__ = "job_outputs"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class JobInput(Base):
    """The bytes of one of a job's input images (by the spec's field name), until the job finishes."""

    __tablename__ = "job_inputs"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    field: Mapped[str] = mapped_column(String(32), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
