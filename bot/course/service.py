"""The course as the cogs see it: lessons, lesson runs, "Try it", submissions, reviews, progress, galleries.

Plain asyncio; it knows Discord only as ids. Lessons come from files (`bot.course.files`) through
`sync`; everything a person does is a row. Every refusal is a `UserFacingError` saying what to do.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import weakref
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from PIL import Image
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.art.contact_sheet import Tile
from bot.artwork import ArtworkIntake, picture_writes, remember_member, remove_stored
from bot.course.files import Problem, load_course
from bot.course.sync import SyncReport, course_limits, sync_lessons
from bot.errors import UserFacingError
from bot.jobs.service import JobRequest, JobService, Receipt
from bot.moderation import ModerationService
from bot.settings import Settings
from models import Exercise, Lesson, LessonRun, Member, Review, Submission, SubmissionStatus
from models.base import utcnow

log = logging.getLogger(__name__)

NOTE_LENGTH = 500
FEEDBACK_LENGTH = 1000
NOT_STARTED = "not started"


@dataclass(frozen=True)
class LessonView:
    lesson: Lesson
    exercises: list[Exercise]


@dataclass(frozen=True)
class SubmissionView:
    """A submission with what is needed to show it: its exercise, lesson and where the lesson is discussed."""

    submission: Submission
    exercise: Exercise
    lesson: Lesson
    lesson_thread_id: int | None


@dataclass(frozen=True)
class ReviewOutcome:
    review: Review
    submission: SubmissionView


@dataclass(frozen=True)
class ExerciseProgress:
    exercise: Exercise
    status: str  # "not started", or a SubmissionStatus value


@dataclass(frozen=True)
class LessonProgress:
    lesson: Lesson
    exercises: list[ExerciseProgress]


@dataclass(frozen=True)
class ExerciseOverview:
    exercise: Exercise
    lesson: Lesson
    submitted: int  # people with a submission
    approved: int
    waiting: int
    revise: int
    longest_waiting: tuple[int, datetime] | None  # (user id, submitted at) of the oldest unreviewed one


class CourseService:
    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession], jobs: JobService,
                 moderation: ModerationService) -> None:
        self.settings = settings
        self.sessions = sessions
        self.jobs = jobs
        self.moderation = moderation
        self.intake = ArtworkIntake(settings, jobs, moderation)
        self.folder = settings.data_dir / "submissions"
        self._submitting: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    # --- lessons from files -------------------------------------------------------------------------

    async def sync_from_folder(self) -> tuple[SyncReport | None, list[Problem]]:
        """Checks the lesson files in COURSE_DIR and, only if all are fine, loads them.

        A broken file changes nothing: syncing without it would hide its lesson.
        """
        lesson_files, problems = await asyncio.to_thread(load_course, self.settings.course_dir,
                                                         limits=course_limits(self.settings))
        if problems:
            return None, problems
        return await sync_lessons(self.sessions, lesson_files), []

    async def lessons(self) -> list[LessonView]:
        """The visible lessons in order, each with its visible exercises."""
        async with self.sessions() as session:
            lessons = list(await session.scalars(select(Lesson).where(~Lesson.hidden).order_by(Lesson.number)))
            exercises = await session.scalars(select(Exercise).where(~Exercise.hidden).order_by(Exercise.position))
        by_lesson: dict[int, list[Exercise]] = {}
        for exercise in exercises:
            by_lesson.setdefault(exercise.lesson_id, []).append(exercise)
        return [LessonView(lesson, by_lesson.get(lesson.id, [])) for lesson in lessons]

    async def lesson(self, number: int) -> LessonView:
        for view in await self.lessons():
            if view.lesson.number == number:
                return view
        raise UserFacingError(f"There is no lesson {number}. /lesson list shows the lessons.")

    async def exercise(self, exercise_id: str) -> tuple[Exercise, Lesson]:
        """A visible exercise and its lesson."""
        async with self.sessions() as session:
            row = (await session.execute(
                select(Exercise, Lesson).join(Lesson, Exercise.lesson_id == Lesson.id)
                .where(Exercise.id == exercise_id, ~Exercise.hidden, ~Lesson.hidden)
            )).first()
        if row is None:
            raise UserFacingError(
                f"There is no exercise `{exercise_id[:40]}`. Pick one from the list as you type, "
                "or see them with /lesson show."
            )
        return row[0], row[1]

    async def search_exercises(self, typed: str, limit: int = 25) -> list[tuple[Exercise, Lesson]]:
        """Exercises whose id, title or lesson match what was typed, in course order (for autocomplete)."""
        words = typed.lower().split()
        found = []
        for view in await self.lessons():
            for exercise in view.exercises:
                haystack = f"{view.lesson.number} {view.lesson.title} {exercise.id} {exercise.title}".lower()
                if all(word in haystack for word in words):
                    found.append((exercise, view.lesson))
        return found[:limit]

    # --- lesson runs: a host opens a lesson in a guild ---------------------------------------------

    async def start_lesson(self, guild_id: int, number: int, host_id: int, channel_id: int) -> tuple[LessonRun,
                                                                                                   LessonView]:
        view = await self.lesson(number)
        try:
            async with self.sessions.begin() as session:
                run = LessonRun(guild_id=guild_id, lesson_id=view.lesson.id, channel_id=channel_id,
                                started_by=host_id)
                session.add(run)
        except IntegrityError:  # the database allows one open lesson per guild
            current = await self.open_run(guild_id)
            title = f"lesson {current[1].number}" if current else "another lesson"
            raise UserFacingError(
                f"{title.capitalize()} is still open here. Close it with /lesson end first.") from None
        return run, view

    async def record_run_posts(self, run_id: int, *, thread_id: int | None,
                               announcement_message_id: int | None) -> None:
        async with self.sessions.begin() as session:
            await session.execute(update(LessonRun).where(LessonRun.id == run_id).values(
                thread_id=thread_id, announcement_message_id=announcement_message_id))

    async def open_run(self, guild_id: int) -> tuple[LessonRun, Lesson] | None:
        async with self.sessions() as session:
            row = (await session.execute(
                select(LessonRun, Lesson).join(Lesson, LessonRun.lesson_id == Lesson.id)
                .where(LessonRun.guild_id == guild_id, LessonRun.ended_at.is_(None))
            )).first()
        return (row[0], row[1]) if row else None

    async def end_lesson(self, guild_id: int) -> tuple[LessonRun, Lesson]:
        current = await self.open_run(guild_id)
        if current is None:
            raise UserFacingError("No lesson is open here. A host opens one with /lesson start.")
        run, lesson = current
        async with self.sessions.begin() as session:
            await session.execute(update(LessonRun).where(LessonRun.id == run.id, LessonRun.ended_at.is_(None))
                                  .values(ended_at=utcnow()))
        return run, lesson

    async def defaults_for_thread(self, thread_id: int, technique: str) -> dict[str, object]:
        """The options a job started in an open lesson's thread takes by default: the preset of the
        lesson's first exercise with that technique, without its prompt and seed: those are the person's own."""
        async with self.sessions() as session:
            exercise = await session.scalar(
                select(Exercise).join(LessonRun, LessonRun.lesson_id == Exercise.lesson_id)
                .where(LessonRun.thread_id == thread_id, LessonRun.ended_at.is_(None),
                       Exercise.technique == technique, ~Exercise.hidden)
                .order_by(Exercise.position).limit(1)
            )
        if exercise is None:
            return {}
        return {name: value for name, value in exercise.preset.items() if name not in ("prompt", "seed")}

    async def lesson_thread(self, guild_id: int, lesson_id: int) -> int | None:
        """The thread of the guild's latest run of this lesson, open or closed."""
        async with self.sessions() as session:
            return await session.scalar(
                select(LessonRun.thread_id)
                .where(LessonRun.guild_id == guild_id, LessonRun.lesson_id == lesson_id,
                       LessonRun.thread_id.is_not(None))
                .order_by(LessonRun.started_at.desc(), LessonRun.id.desc()).limit(1)
            )

    # --- "Try it" ------------------------------------------------------------------------------------

    async def try_exercise(self, exercise_id: str, request: JobRequest) -> Receipt:
        """Queues the exercise's preset as the presser's own job, through the usual caps and moderation."""
        exercise, _ = await self.exercise(exercise_id)
        return await self.jobs.submit(dataclasses.replace(
            request, technique=exercise.technique, options=exercise.preset | exercise.images,
            inherited_images=dict(exercise.images),
        ))

    # --- submissions -----------------------------------------------------------------------------------

    async def submit(self, *, guild_id: int, user_id: int, display_name: str, exercise_id: str,
                     image: bytes | None, job_id: int | None, note: str | None) -> SubmissionView:
        """Stores a person's work for an exercise: an attached image or one of their own finished jobs.

        The earlier submissions stay as history; the new one is the latest and the one that counts.
        """
        exercise, lesson = await self.exercise(exercise_id)
        if (image is None) == (job_id is None):
            raise UserFacingError("Submit one piece of work: attach an `image`, or give the number of one of your "
                                  "finished jobs as `job`.")
        note = (note or "").strip() or None
        if note is not None and len(note) > NOTE_LENGTH:
            raise UserFacingError(f"Your note is {len(note)} characters; keep it under {NOTE_LENGTH}.")
        if note is not None:
            await self.intake.moderate(guild_id, user_id, [note])
        lock = self._submitting.setdefault(user_id, asyncio.Lock())
        async with lock:
            await self._check_history_cap(guild_id, user_id, exercise.id)
            if image is not None:
                picture, recipe = await self.intake.checked_upload(image), None
                source_job_id = None
            else:
                assert job_id is not None
                picture, job = await self.intake.own_finished_job(job_id, user_id, guild_id)
                recipe, source_job_id = job.spec, job_id
            submission = await self._store(Submission(
                guild_id=guild_id, user_id=user_id, exercise_id=exercise.id, job_id=source_job_id, recipe=recipe,
                note=note,
            ), picture)
        async with self.sessions.begin() as session:
            await remember_member(session, guild_id, user_id, display_name)
        return SubmissionView(submission, exercise, lesson, await self.lesson_thread(guild_id, lesson.id))

    async def _check_history_cap(self, guild_id: int, user_id: int, exercise_id: str) -> None:
        async with self.sessions() as session:
            count = await session.scalar(select(func.count()).select_from(Submission).where(
                Submission.guild_id == guild_id, Submission.user_id == user_id, Submission.exercise_id == exercise_id))
        if (count or 0) >= self.settings.max_submissions_per_exercise:
            raise UserFacingError(
                f"You have submitted to this exercise {count} times, the most this server keeps. "
                "Ask a host to remove an old one with /review remove, then submit again."
            )

    async def _store(self, submission: Submission, picture: Image.Image) -> Submission:
        """Adds the row as the latest (the earlier one stays as history) and writes its image, named by id."""
        try:
            async with picture_writes(self.folder) as pictures, self.sessions.begin() as session:
                await session.execute(update(Submission).where(
                    Submission.guild_id == submission.guild_id, Submission.user_id == submission.user_id,
                    Submission.exercise_id == submission.exercise_id, Submission.latest,
                ).values(latest=False))
                session.add(submission)
                await session.flush()  # the id names the file
                submission.image_path = await pictures.write(picture, submission.id)
        except IntegrityError:
            raise UserFacingError("Another submission of yours to this exercise arrived at the same moment. "
                                  "Check /progress member, and submit again if needed.") from None
        return submission

    async def record_post(self, submission_id: int, channel_id: int, message_id: int) -> None:
        async with self.sessions.begin() as session:
            await session.execute(update(Submission).where(Submission.id == submission_id).values(
                posted_channel_id=channel_id, posted_message_id=message_id))

    async def submission(self, submission_id: int, guild_id: int) -> SubmissionView:
        """A submission of this guild (another guild's reads as missing)."""
        async with self.sessions() as session:
            row = (await session.execute(
                select(Submission, Exercise, Lesson)
                .join(Exercise, Submission.exercise_id == Exercise.id).join(Lesson, Exercise.lesson_id == Lesson.id)
                .where(Submission.id == submission_id, Submission.guild_id == guild_id)
            )).first()
        if row is None:
            raise UserFacingError(f"There is no submission #{submission_id} in this server.")
        return SubmissionView(row[0], row[1], row[2], await self.lesson_thread(guild_id, row[2].id))

    async def remove_submission(self, submission_id: int, guild_id: int) -> SubmissionView:
        """A host removes one submission and its image. If it was the latest, the one before counts again."""
        view = await self.submission(submission_id, guild_id)
        removed = view.submission
        async with self.sessions.begin() as session:
            # Its reviews go with it: the foreign key cascades.
            await session.execute(Submission.__table__.delete().where(Submission.id == removed.id))
            if removed.latest:
                previous = await session.scalar(select(Submission).where(
                    Submission.guild_id == removed.guild_id, Submission.user_id == removed.user_id,
                    Submission.exercise_id == removed.exercise_id,
                ).order_by(Submission.created_at.desc(), Submission.id.desc()).limit(1))
                if previous is not None:
                    previous.latest = True
        if removed.image_path:
            await asyncio.to_thread(remove_stored, Path(removed.image_path), self.folder)
        return view

    # --- reviews ---------------------------------------------------------------------------------------

    async def pending(self, guild_id: int, limit: int = 5) -> tuple[list[SubmissionView], int]:
        """The oldest latest submissions waiting for a review, and how many wait in all."""
        waiting = (Submission.guild_id == guild_id, Submission.latest, Submission.status == SubmissionStatus.SUBMITTED)
        async with self.sessions() as session:
            total = await session.scalar(select(func.count()).select_from(Submission).where(*waiting)) or 0
            rows = (await session.execute(
                select(Submission, Exercise, Lesson)
                .join(Exercise, Submission.exercise_id == Exercise.id).join(Lesson, Exercise.lesson_id == Lesson.id)
                .where(*waiting).order_by(Submission.created_at, Submission.id).limit(limit)
            )).all()
        views = [SubmissionView(submission, exercise, lesson, await self.lesson_thread(guild_id, lesson.id))
                 for submission, exercise, lesson in rows]
        return views, total

    async def review(self, submission_id: int, guild_id: int, reviewer_id: int, decision: SubmissionStatus,
                     feedback: str | None = None) -> ReviewOutcome:
        """Approves a submission or asks for a revision: the one guarded transition out of `submitted`."""
        if decision not in (SubmissionStatus.APPROVED, SubmissionStatus.REVISE):
            raise ValueError(f"a review approves or asks for a revision, not {decision}")
        feedback = (feedback or "").strip()[:FEEDBACK_LENGTH] or None
        async with self.sessions.begin() as session:
            changed = await session.execute(update(Submission).where(
                Submission.id == submission_id, Submission.guild_id == guild_id, Submission.latest,
                Submission.status == SubmissionStatus.SUBMITTED,
            ).values(status=decision, reviewed_at=utcnow()))
            if changed.rowcount == 1:
                review = Review(submission_id=submission_id, reviewer_id=reviewer_id, decision=decision,
                                feedback=feedback)
                session.add(review)
        view = await self.submission(submission_id, guild_id)  # raises for another guild's or a missing one
        if changed.rowcount != 1:
            if not view.submission.latest:
                raise UserFacingError(f"Submission #{submission_id} was replaced by a newer one; review that instead "
                                      "(/review queue).")
            raise UserFacingError(f"Submission #{submission_id} was already reviewed ({view.submission.status}).")
        return ReviewOutcome(review, view)

    async def record_told(self, review_id: int, told_by: str | None) -> None:
        async with self.sessions.begin() as session:
            await session.execute(update(Review).where(Review.id == review_id).values(told_by=told_by))

    # --- progress and galleries --------------------------------------------------------------------------

    async def progress(self, guild_id: int, user_id: int) -> list[LessonProgress]:
        """A person's state per lesson and exercise in this guild."""
        async with self.sessions() as session:
            latest = (await session.execute(
                select(Submission.exercise_id, Submission.status)
                .where(Submission.guild_id == guild_id, Submission.user_id == user_id, Submission.latest)
            )).all()
        statuses = {exercise_id: status for exercise_id, status in latest}
        return [LessonProgress(view.lesson, [ExerciseProgress(exercise, str(statuses.get(exercise.id, NOT_STARTED)))
                                             for exercise in view.exercises])
                for view in await self.lessons()]

    async def class_overview(self, guild_id: int) -> list[ExerciseOverview]:
        """Per exercise: how many submitted, were approved, wait or were asked to revise; who waits longest."""
        async with self.sessions() as session:
            latest = list(await session.scalars(
                select(Submission).where(Submission.guild_id == guild_id, Submission.latest)
                .order_by(Submission.created_at, Submission.id)
            ))
        by_exercise: dict[str, list[Submission]] = {}
        for submission in latest:  # oldest first
            by_exercise.setdefault(submission.exercise_id, []).append(submission)
        overview = []
        for view in await self.lessons():
            for exercise in view.exercises:
                mine = by_exercise.get(exercise.id, [])
                counts = Counter(s.status for s in mine)
                oldest = next((s for s in mine if s.status == SubmissionStatus.SUBMITTED), None)
                overview.append(ExerciseOverview(
                    exercise, view.lesson, submitted=len(mine), approved=counts[SubmissionStatus.APPROVED],
                    waiting=counts[SubmissionStatus.SUBMITTED], revise=counts[SubmissionStatus.REVISE],
                    longest_waiting=(oldest.user_id, oldest.created_at) if oldest else None,
                ))
        return overview

    async def gallery(self, guild_id: int, lesson_number: int, exercise_id: str | None = None) -> tuple[Lesson,
                                                                                                        list[Tile]]:
        """The latest submission of each person to the lesson (or one exercise), oldest first, with names."""
        view = await self.lesson(lesson_number)
        exercise_ids = [exercise.id for exercise in view.exercises]
        if exercise_id is not None:
            if exercise_id not in exercise_ids:
                raise UserFacingError(f"Lesson {lesson_number} has no exercise `{exercise_id[:40]}`.")
            exercise_ids = [exercise_id]
        async with self.sessions() as session:
            rows = (await session.execute(
                select(Submission, Member.display_name)
                .outerjoin(Member, (Member.guild_id == Submission.guild_id) & (Member.user_id == Submission.user_id))
                .where(Submission.guild_id == guild_id, Submission.latest, Submission.exercise_id.in_(exercise_ids),
                       Submission.image_path.is_not(None))
                .order_by(Submission.created_at, Submission.id)
            )).all()
        return view.lesson, [Tile(Path(submission.image_path), name or f"member {submission.user_id}")
                             for submission, name in rows]
