"""Generators a guild trains on its own images (/train), and what each has learnt so far."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Enum, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow


class GanStatus(enum.StrEnum):
    TRAINING = "training"  # queued or running chunk by chunk
    READY = "ready"  # trained all its steps
    STOPPED = "stopped"  # cancelled: it keeps what it learnt up to its last checkpoint
    FAILED = "failed"


class GanModel(Base):
    """One guild's generator. Its data set and checkpoint live in `DATA_DIR/gan/model-<id>/`."""

    __tablename__ = "gan_models"
    __table_args__ = (UniqueConstraint("guild_id", "name"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guild_id: Mapped[int] = mapped_column(BigInteger, index=True)
    name: Mapped[str] = mapped_column(String(40))
    created_by: Mapped[int | None] = mapped_column(BigInteger)  # None once that host asked to be forgotten
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))  # its training job
    source: Mapped[str] = mapped_column(String(100))  # "the entries of challenge #3", "an uploaded zip"
    images: Mapped[int] = mapped_column(Integer)  # the data set's size
    image_size: Mapped[int] = mapped_column(Integer)
    mirror: Mapped[bool] = mapped_column()
    steps: Mapped[int] = mapped_column(Integer)  # planned
    steps_done: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[GanStatus] = mapped_column(
        Enum(GanStatus, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
        default=GanStatus.TRAINING,
    )
    bytes_used: Mapped[int] = mapped_column(BigInteger, default=0)  # its folder on disk
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
