"""The course service against a real SQLite file made by the migrations: sync, constraints, guarded reviews."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.course.files import ExerciseFile, LessonFile
from bot.course.service import CourseService
from bot.course.sync import sync_lessons
from bot.errors import UserFacingError
from bot.guilds import GuildService
from bot.jobs.repository import JobRepository
from bot.jobs.service import JobService
from bot.jobs.uploads import UploadStore
from bot.moderation import ModerationService
from bot.settings import Settings
from models import Exercise, Lesson, LessonRun, Review, Submission, SubmissionStatus
from tests.postgres import both_engines

pytestmark = both_engines

GUILD, OTHER_GUILD, ADA, BO, HOST = 1, 2, 10, 11, 99


def exercise(exercise_id: str, **changes: object) -> ExerciseFile:
    values: dict = {"id": exercise_id, "title": exercise_id.title(), "brief": "Do it.", "technique": "cppn",
                    "preset": {"size": 32, "steps": 2}, "submit": "An image.", "images": {}}
    return ExerciseFile(**(values | changes))


def lesson(number: int, slug: str, *exercises: ExerciseFile, title: str = "A lesson") -> LessonFile:
    return LessonFile(number=number, slug=slug, title=title, summary="Short.", links={}, exercises=exercises,
                      body="Text.", path=Path(f"{number:02d}-{slug}.md"), content_hash=f"{slug}-{title}")


def png(colour=(200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 32), colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def course(sessions, tmp_path: Path) -> CourseService:
    settings = Settings(_env_file=None, data_dir=tmp_path, max_submissions_per_exercise=3)  # type: ignore[call-arg]
    moderation = ModerationService(sessions, max_terms=10, budget_seconds=1.0)
    uploads = UploadStore(tmp_path / "uploads", max_bytes=settings.max_upload_bytes,
                          max_pixels=settings.max_image_pixels)
    jobs = JobService(settings, JobRepository(sessions), GuildService(sessions), moderation, uploads)
    return CourseService(settings, sessions, jobs, moderation)


COURSE = [lesson(1, "patterns", exercise("first"), exercise("second")), lesson(2, "zoom", exercise("zoom-out"))]


async def test_sync_is_idempotent_follows_edits_and_hides_removed_lessons(course, sessions):
    first = await sync_lessons(course.sessions, COURSE)
    assert (first.added, first.updated, first.hidden, first.unchanged) == (["patterns", "zoom"], [], [], 0)
    again = await sync_lessons(course.sessions, COURSE)
    assert (again.added, again.updated, again.hidden, again.unchanged) == ([], [], [], 2)

    await course.submit(guild_id=GUILD, user_id=ADA, display_name="Ada", exercise_id="zoom-out", image=png(),
                        job_id=None, note=None)
    edited = [lesson(1, "patterns", exercise("first", title="First light"), title="Patterns, renamed")]
    report = await sync_lessons(course.sessions, edited)
    assert (report.updated, report.hidden) == (["patterns"], ["zoom"])
    views = await course.lessons()
    assert [(v.lesson.title, [e.title for e in v.exercises]) for v in views] == [("Patterns, renamed", ["First light"])]
    with pytest.raises(UserFacingError, match="no lesson 2"):
        await course.lesson(2)
    with pytest.raises(UserFacingError, match="no exercise"):  # a hidden exercise takes no new work
        await course.submit(guild_id=GUILD, user_id=ADA, display_name="Ada", exercise_id="second", image=png(),
                            job_id=None, note=None)
    async with sessions() as session:
        assert len(list(await session.scalars(select(Submission)))) == 1  # kept with its hidden lesson
        hidden = {e.id for e in await session.scalars(select(Exercise).where(Exercise.hidden))}
    assert hidden == {"second", "zoom-out"}

    back = await sync_lessons(course.sessions, COURSE)  # a lesson whose file returns is shown again
    assert back.updated == ["patterns", "zoom"] or set(back.updated) == {"patterns", "zoom"}
    assert len(await course.lessons()) == 2


async def test_one_latest_submission_per_person_and_exercise_is_kept_by_the_database(course, sessions):
    await sync_lessons(course.sessions, COURSE)
    await course.submit(guild_id=GUILD, user_id=ADA, display_name="Ada", exercise_id="first", image=png(),
                        job_id=None, note=None)
    async with sessions() as session:
        session.add(Submission(guild_id=GUILD, user_id=ADA, exercise_id="first", latest=True))
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_reviews_change_state_once_and_only_in_their_guild(course, sessions):
    await sync_lessons(course.sessions, COURSE)
    view = await course.submit(guild_id=GUILD, user_id=ADA, display_name="Ada", exercise_id="first", image=png(),
                               job_id=None, note="hello")
    submission_id = view.submission.id
    with pytest.raises(UserFacingError, match="no submission"):
        await course.review(submission_id, OTHER_GUILD, HOST, SubmissionStatus.APPROVED)
    with pytest.raises(ValueError):
        await course.review(submission_id, GUILD, HOST, SubmissionStatus.SUBMITTED)

    outcome = await course.review(submission_id, GUILD, HOST, SubmissionStatus.REVISE, "  more contrast  ")
    assert outcome.review.feedback == "more contrast"
    with pytest.raises(UserFacingError, match="already reviewed"):
        await course.review(submission_id, GUILD, HOST, SubmissionStatus.APPROVED)

    newer = await course.submit(guild_id=GUILD, user_id=ADA, display_name="Ada", exercise_id="first", image=png(),
                                job_id=None, note=None)
    assert newer.submission.status == SubmissionStatus.SUBMITTED
    with pytest.raises(UserFacingError, match="replaced by a newer one"):
        await course.review(submission_id, GUILD, HOST, SubmissionStatus.APPROVED)
    await course.submit(guild_id=GUILD, user_id=ADA, display_name="Ada", exercise_id="first", image=png(),
                        job_id=None, note=None)
    with pytest.raises(UserFacingError, match="replaced by a newer one"):  # never reviewed, but not the latest
        await course.review(newer.submission.id, GUILD, HOST, SubmissionStatus.APPROVED)
    async with sessions() as session:
        reviews = list(await session.scalars(select(Review)))
        stored = await session.get(Submission, submission_id)
        never_reviewed = await session.get(Submission, newer.submission.id)
    assert never_reviewed.status == SubmissionStatus.SUBMITTED
    assert [r.decision for r in reviews] == [SubmissionStatus.REVISE] and stored.status == SubmissionStatus.REVISE

    async with sessions() as session:  # the database refuses a review that decides nothing
        session.add(Review(submission_id=submission_id, reviewer_id=HOST, decision=SubmissionStatus.SUBMITTED))
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_removing_the_latest_submission_makes_the_one_before_count(course, sessions, tmp_path):
    await sync_lessons(course.sessions, COURSE)
    older = await course.submit(guild_id=GUILD, user_id=ADA, display_name="Ada", exercise_id="first",
                                image=png((1, 1, 1)), job_id=None, note=None)
    newer = await course.submit(guild_id=GUILD, user_id=ADA, display_name="Ada", exercise_id="first",
                                image=png((2, 2, 2)), job_id=None, note=None)
    await course.review(newer.submission.id, GUILD, HOST, SubmissionStatus.REVISE, "again")
    with pytest.raises(UserFacingError):
        await course.remove_submission(newer.submission.id, OTHER_GUILD)  # host powers stop at their guild
    await course.remove_submission(newer.submission.id, GUILD)
    async with sessions() as session:  # every table that could hold it: its reviews went with it
        assert list(await session.scalars(select(Review))) == []
    stored = {path.name for path in (tmp_path / "submissions").iterdir()}
    assert stored == {f"{older.submission.id}.webp"}
    async with sessions() as session:
        remaining = list(await session.scalars(select(Submission)))
    assert [(s.id, s.latest) for s in remaining] == [(older.submission.id, True)]


async def test_submissions_are_stored_small_and_capped_per_exercise(course):
    await sync_lessons(course.sessions, COURSE)
    big = io.BytesIO()
    Image.effect_noise((3000, 2000), 60).convert("RGB").save(big, format="JPEG", quality=80)
    view = await course.submit(guild_id=GUILD, user_id=ADA, display_name="Ada", exercise_id="first",
                               image=big.getvalue(), job_id=None, note=None)
    stored = Path(view.submission.image_path)
    assert stored.name == f"{view.submission.id}.webp"
    with Image.open(stored) as image:
        assert max(image.size) == 1024
    for _ in range(2):
        await course.submit(guild_id=GUILD, user_id=ADA, display_name="Ada", exercise_id="first", image=png(),
                            job_id=None, note=None)
    with pytest.raises(UserFacingError, match="the most this server keeps"):
        await course.submit(guild_id=GUILD, user_id=ADA, display_name="Ada", exercise_id="first", image=png(),
                            job_id=None, note=None)
    # The cap is per exercise and per person.
    await course.submit(guild_id=GUILD, user_id=BO, display_name="Bo", exercise_id="first", image=png(),
                        job_id=None, note=None)
    await course.submit(guild_id=GUILD, user_id=ADA, display_name="Ada", exercise_id="second", image=png(),
                        job_id=None, note=None)


async def test_notes_are_checked_by_moderation_and_length(course):
    await sync_lessons(course.sessions, COURSE)
    await course.moderation.add_term(GUILD, "word", "forbidden", added_by=HOST)
    with pytest.raises(UserFacingError, match="do not allow that text"):
        await course.submit(guild_id=GUILD, user_id=ADA, display_name="Ada", exercise_id="first", image=png(),
                            job_id=None, note="a FORBIDDEN note")
    with pytest.raises(UserFacingError, match="keep it under"):
        await course.submit(guild_id=GUILD, user_id=ADA, display_name="Ada", exercise_id="first", image=png(),
                            job_id=None, note="x" * 501)


async def test_one_open_lesson_per_guild_and_thread_defaults(course, sessions):
    await sync_lessons(course.sessions, COURSE)
    run, _ = await course.start_lesson(GUILD, 1, HOST, channel_id=5)
    await course.record_run_posts(run.id, thread_id=77, announcement_message_id=78)
    with pytest.raises(UserFacingError, match="still open"):
        await course.start_lesson(GUILD, 2, HOST, channel_id=5)
    await course.start_lesson(OTHER_GUILD, 2, HOST, channel_id=6)  # another guild is not affected
    assert await course.defaults_for_thread(77, "cppn") == {"size": 32, "steps": 2}
    assert await course.defaults_for_thread(77, "imagine") == {}
    await course.end_lesson(GUILD)
    assert await course.defaults_for_thread(77, "cppn") == {}
    async with sessions() as session:
        session.add(LessonRun(guild_id=OTHER_GUILD, lesson_id=(await session.scalar(select(Lesson.id))),
                              channel_id=6))
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_a_submitted_job_is_checked_against_the_servers_blocked_terms(course, tmp_path):
    from models import Job, JobStatus

    await sync_lessons(course.sessions, COURSE)
    result = tmp_path / "results" / "job-1" / "final.png"
    result.parent.mkdir(parents=True)
    Image.new("RGB", (16, 16)).save(result)
    spec = {"technique": "imagine", "seed": 1, "config": {"prompt": "a forbidden lighthouse"}}
    job = await course.jobs.repository.add(Job(channel_id=1, user_id=ADA, technique="imagine", spec=spec, seed=1,
                                               title="t", status=JobStatus.DONE, result_path=str(result)))
    await course.moderation.add_term(GUILD, "word", "forbidden", added_by=HOST)
    with pytest.raises(UserFacingError, match="do not allow that text"):
        await course.submit(guild_id=GUILD, user_id=ADA, display_name="Ada", exercise_id="first", image=None,
                            job_id=job.id, note=None)
    view = await course.submit(guild_id=OTHER_GUILD, user_id=ADA, display_name="Ada", exercise_id="first",
                               image=None, job_id=job.id, note=None)
    assert view.submission.recipe == spec and view.submission.job_id == job.id


async def test_removing_a_submission_never_deletes_a_file_outside_the_submissions_folder(course, sessions, tmp_path):
    await sync_lessons(course.sessions, COURSE)
    outside = tmp_path / "precious.png"
    outside.write_bytes(png())
    view = await course.submit(guild_id=GUILD, user_id=ADA, display_name="Ada", exercise_id="first", image=png(),
                               job_id=None, note=None)
    async with sessions.begin() as session:
        (await session.get(Submission, view.submission.id)).image_path = str(outside)
    await course.remove_submission(view.submission.id, GUILD)
    assert outside.exists()
