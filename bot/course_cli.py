"""`python -m bot course check|sync [--dir DIR]`: check the course's lesson files; load them into the database.

Every problem is printed as `path:line: message`, then one summary line. Exit codes: 0 the course
is fine, 1 it has problems, 2 bad settings. Presets are checked against the bot's MAX_STEPS and
MAX_SIZE, as a member's job would be.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from bot.settings import Settings

if TYPE_CHECKING:
    from bot.course.files import LessonFile, Problem
    from bot.course.sync import SyncReport

DEFAULT_COURSE_DIR = Path("course")


def add_course_command(subparsers) -> None:
    """Add `course` and its actions to an argparse subparsers object; each action's `func` returns the exit code."""
    course = subparsers.add_parser(
        "course", help="check the course's lesson files, or load them into the database",
        description="Work with the course: one Markdown file per lesson in COURSE_DIR (see course/README.md).",
    )
    actions = course.add_subparsers(dest="course_action", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check", help="check every lesson file and print each problem as path:line: message",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dir_option(check)
    check.set_defaults(func=command_check)
    sync = actions.add_parser(
        "sync", help="load the lesson files into the database (the bot also does this when it starts)",
        description="Checks the course, then loads it: an edited file updates its lesson, a removed lesson is "
                    "hidden (its submissions are kept). With any problem nothing changes. Exit codes: 0 synced, "
                    "1 the course has problems, 2 bad settings.",
    )
    add_dir_option(sync)
    sync.set_defaults(func=command_sync)


def add_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, default=None,
                        help="the course folder (default: COURSE_DIR, which defaults to course/)")


def course_dir(args: argparse.Namespace, settings: Settings) -> Path:
    return args.dir if args.dir is not None else Path(getattr(settings, "course_dir", DEFAULT_COURSE_DIR))


def load_settings_or_report() -> Settings | None:
    try:
        return Settings()
    except ValidationError as error:
        print(f"Invalid settings: {error}", file=sys.stderr)
        return None


def load_and_report(args: argparse.Namespace, settings: Settings) -> tuple[list[LessonFile], list[Problem]]:
    """The course's valid lessons and its problems, each problem printed as path:line: message."""
    from bot.course.files import load_course  # imports torch (through the techniques): only when needed
    from bot.course.sync import course_limits

    lessons, problems = load_course(course_dir(args, settings), limits=course_limits(settings))
    for problem in problems:
        print(problem)
    return lessons, problems


def command_sync(args: argparse.Namespace) -> int:
    settings = load_settings_or_report()
    if settings is None:
        return 2
    lessons, problems = load_and_report(args, settings)
    if problems:
        print(f"{len(problems)} problems: nothing was loaded. Fix them and run `python -m bot course sync` again.")
        return 1
    report = asyncio.run(_sync(settings, lessons))
    print(report.summary())
    return 0


async def _sync(settings: Settings, lessons: list[LessonFile]) -> SyncReport:
    from bot import db
    from bot.course.sync import sync_lessons

    engine = db.create_engine(settings.resolved_database_url)
    try:
        await db.upgrade(engine)
        return await sync_lessons(db.create_session_factory(engine), lessons)
    finally:
        await engine.dispose()


def command_check(args: argparse.Namespace) -> int:
    settings = load_settings_or_report()
    if settings is None:
        return 2
    lessons, problems = load_and_report(args, settings)
    exercises = sum(len(lesson.exercises) for lesson in lessons)
    print(f"{len(lessons)} lessons, {exercises} exercises, {len(problems)} problems")
    return 1 if problems else 0
