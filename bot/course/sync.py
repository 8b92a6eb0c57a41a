"""Lesson files into the database: idempotent, so it runs at every start and from `python -m bot course sync`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.course.files import LessonFile
from bot.jobs.parser import Limits
from bot.settings import Settings
from models import Exercise, Lesson


def course_limits(settings: Settings) -> Limits:
    """The limits presets are held to: the bot's own, never clamped (a preset over them is an error)."""
    return Limits(max_steps=settings.max_steps, max_size=settings.max_size, clamp=False)


@dataclass(frozen=True)
class SyncReport:
    added: list[str]
    updated: list[str]
    hidden: list[str]
    unchanged: int

    def summary(self) -> str:
        parts = [f"{len(self.added)} added", f"{len(self.updated)} updated", f"{len(self.hidden)} hidden",
                 f"{self.unchanged} unchanged"]
        return "Course synced: " + ", ".join(parts) + "."


async def sync_lessons(sessions: async_sessionmaker[AsyncSession], lesson_files: Sequence[LessonFile]) -> SyncReport:
    """Loads lessons into the database. Idempotent: a file edited since updates its lesson, a lesson
    whose file is gone is hidden (its submissions stay), and an unchanged course writes nothing."""
    added, updated, hidden, unchanged = [], [], [], 0
    async with sessions.begin() as session:
        lessons = {lesson.slug: lesson for lesson in await session.scalars(select(Lesson))}
        exercises = {exercise.id: exercise for exercise in await session.scalars(select(Exercise))}
        seen_exercises: set[str] = set()
        for lesson_file in lesson_files:
            lesson = lessons.get(lesson_file.slug)
            if lesson is None:
                lesson = Lesson(slug=lesson_file.slug)
                session.add(lesson)
                added.append(lesson_file.slug)
            changed = _assign(lesson, number=lesson_file.number, title=lesson_file.title,
                              summary=lesson_file.summary, body=lesson_file.body, links=dict(lesson_file.links),
                              content_hash=lesson_file.content_hash, hidden=False)
            await session.flush()  # a new lesson gets its id
            for position, exercise_file in enumerate(lesson_file.exercises):
                seen_exercises.add(exercise_file.id)
                exercise = exercises.get(exercise_file.id)
                if exercise is None:
                    exercise = Exercise(id=exercise_file.id)
                    session.add(exercise)
                    changed = True
                images = {name: str(path) for name, path in exercise_file.images.items()}
                preset = {name: value for name, value in exercise_file.preset.items() if name not in images}
                changed |= _assign(exercise, lesson_id=lesson.id, position=position, title=exercise_file.title,
                                   brief=exercise_file.brief, technique=exercise_file.technique, preset=preset,
                                   images=images, submit_hint=exercise_file.submit, hidden=False)
            if changed and lesson_file.slug not in added:
                updated.append(lesson_file.slug)
            elif not changed:
                unchanged += 1
        file_slugs = {lesson_file.slug for lesson_file in lesson_files}
        for slug, lesson in lessons.items():
            if slug not in file_slugs and not lesson.hidden:
                lesson.hidden = True
                hidden.append(slug)
        for exercise_id, exercise in exercises.items():
            if exercise_id not in seen_exercises:
                exercise.hidden = True
    return SyncReport(added=added, updated=updated, hidden=hidden, unchanged=unchanged)


def _assign(row: object, **values: object) -> bool:
    """Sets the attributes that differ; True when any did (so an unchanged course writes nothing)."""
    changed = False
    for name, value in values.items():
        if getattr(row, name, None) != value:
            setattr(row, name, value)
            changed = True
    return changed
