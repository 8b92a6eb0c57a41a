"""Easel's database tables (SQLAlchemy 2.0, typed `Mapped[]`). Neural networks live in `bot/art/`."""

from models.base import Base
from models.challenge import Challenge, ChallengeEntry, ChallengePhase, ChallengeVote
from models.course import Exercise, Lesson, LessonRun, Review, Submission, SubmissionStatus
from models.gan import GanModel, GanStatus
from models.guild import GuildSettings, Member
from models.job import Job, JobStatus
from models.moderation import BlockedTerm, ModerationEvent
from models.state import AppState
from models.worker import JobEvent, JobInput, JobOutput, Worker

__all__ = [
    "AppState",
    "Base",
    "BlockedTerm",
    "Challenge",
    "ChallengeEntry",
    "ChallengePhase",
    "ChallengeVote",
    "Exercise",
    "GanModel",
    "GanStatus",
    "GuildSettings",
    "Job",
    "JobEvent",
    "JobInput",
    "JobOutput",
    "JobStatus",
    "Lesson",
    "LessonRun",
    "Member",
    "ModerationEvent",
    "Review",
    "Submission",
    "SubmissionStatus",
    "Worker",
]
