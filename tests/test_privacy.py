"""`/forget-me`'s service against the real database and a real data folder."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import BigInteger, Integer, select

from bot.privacy import ForgetReport, StillRunning, covered_columns, forget_person
from models import (
    AppState,
    Base,
    BlockedTerm,
    Challenge,
    ChallengeEntry,
    ChallengePhase,
    ChallengeVote,
    Exercise,
    GanModel,
    GuildSettings,
    Job,
    JobEvent,
    JobInput,
    JobOutput,
    JobStatus,
    Lesson,
    LessonRun,
    Member,
    ModerationEvent,
    Review,
    Submission,
    SubmissionStatus,
    Worker,
)
from models.base import utcnow
from tests.postgres import both_engines

pytestmark = both_engines

ALICE, BOB, CAROL = 101, 202, 404
GUILD, OTHER_GUILD = 1, 2


def person_columns() -> list[Any]:
    """Every column of every table whose name says it holds a person's id."""
    return [column for table in Base.metadata.sorted_tables for column in table.columns
            if (column.name.endswith(("user_id", "_by")) or column.name in ("reviewer_id", "voter_id"))
            and isinstance(column.type, Integer | BigInteger)]  # reviews.told_by says "dm" or "thread": no person


async def assert_nothing_names(sessions, user_id: int) -> None:
    """No row of any table holds `user_id` in a column that names a person (also used by tests/e2e)."""
    async with sessions() as session:
        for column in person_columns():
            left = (await session.execute(select(column.table).where(column == user_id))).all()
            assert left == [], f"{column.table.name}.{column.name} still names {user_id}: {left}"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"  # the database file stays outside, so every file in here is one of the bot's
    path.mkdir()
    return path


def write(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    return path


def files_under(folder: Path) -> set[Path]:
    return {Path(parent, name) for parent, _, names in os.walk(folder) for name in names}


def not_database(files: set[Path]) -> set[Path]:
    return {path for path in files if not path.name.startswith("easel.db")}


async def add(sessions, *rows: Base) -> None:
    async with sessions.begin() as session:
        session.add_all(rows)


def job(user_id: int, status: JobStatus, *images: Path, guild_id: int | None = GUILD, **fields: Any) -> Job:
    config = {"prompt": "a lighthouse at dusk", **{f"image_{i}": str(path) for i, path in enumerate(images)}}
    finished = status in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)
    return Job(guild_id=guild_id, channel_id=20, user_id=user_id, technique="imagine", title="t", seed=1,
               total_steps=10, spec={"technique": "imagine", "seed": 1, "config": config}, status=status,
               finished_at=utcnow() if finished else None, **fields)


def result_folder(data_dir: Path, job_id: int, sizes: tuple[int, ...] = (500, 300, 200)) -> Path:
    folder = data_dir / "results" / f"job-{job_id}"
    for index, size in enumerate(sizes):
        write(folder / f"file-{index}.png", size)
    return folder


async def add_submission(sessions, data_dir: Path, user_id: int, guild_id: int, *, job_id: int | None = None,
                         posted: tuple[int, int] | None = None, size: int = 700) -> Submission:
    submission = Submission(guild_id=guild_id, user_id=user_id, exercise_id="l1-a", job_id=job_id,
                            recipe={"technique": "imagine"}, posted_channel_id=posted and posted[0],
                            posted_message_id=posted and posted[1])
    await add(sessions, submission)
    image = write(data_dir / "submissions" / f"{submission.id}.webp", size)
    async with sessions.begin() as session:
        (await session.get(Submission, submission.id)).image_path = str(image)
    submission.image_path = str(image)
    return submission


async def add_exercise(sessions) -> Lesson:
    lesson = Lesson(slug="l1", number=1, title="Lesson", summary="s", body="b", content_hash="h")
    await add(sessions, lesson)
    await add(sessions, Exercise(id="l1-a", lesson_id=lesson.id, position=1, title="A", brief="b",
                                 technique="imagine", preset={}, submit_hint="h"))
    return lesson


async def dump(sessions) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, as plain dicts in primary-key order."""
    tables = {}
    async with sessions() as session:
        for table in Base.metadata.sorted_tables:
            rows = (await session.execute(select(table).order_by(*table.primary_key.columns))).mappings().all()
            tables[table.name] = [dict(row) for row in rows]
    return tables


@dataclass
class World:
    """Alice and Bob, with rows in every table that can name a person, and their files."""

    alice_jobs: list[int] = field(default_factory=list)
    alice_submissions: list[int] = field(default_factory=list)
    alice_files: set[Path] = field(default_factory=set)
    alice_bytes: int = 0
    kept_files: set[Path] = field(default_factory=set)  # Bob's, and the upload both used
    alice_post: tuple[int, int] = (30, 31)
    alice_entries: list[int] = field(default_factory=list)
    alice_entry_post: tuple[int, int] = (60, 61)  # in the thread of the challenge it was shown in


async def build_world(sessions, data_dir: Path) -> World:
    world = World()
    uploads = data_dir / "uploads"
    shared = write(uploads / "shared0000000000000000000.png", 1000)  # the same bytes, uploaded by both
    alice_only = write(uploads / "alice0000000000000000000.png", 2000)
    alice_queued_input = write(uploads / "alicequeued0000000000000.jpg", 300)
    bob_only = write(uploads / "bob000000000000000000000.webp", 4000)

    lesson = await add_exercise(sessions)
    await add(sessions,
              GuildSettings(guild_id=GUILD, host_role_id=5), AppState(key="commands", value="abc"),
              LessonRun(guild_id=GUILD, lesson_id=lesson.id, channel_id=20, started_by=ALICE),
              LessonRun(guild_id=OTHER_GUILD, lesson_id=lesson.id, channel_id=21, started_by=BOB),
              ModerationEvent(guild_id=GUILD, user_id=ALICE, channel_id=20, prompt="p", matched="m"),
              ModerationEvent(guild_id=OTHER_GUILD, user_id=ALICE, channel_id=21, prompt="p", matched="m"),
              ModerationEvent(guild_id=GUILD, user_id=BOB, channel_id=20, prompt="p", matched="m"),
              Member(guild_id=GUILD, user_id=ALICE, display_name="alice"),
              Member(guild_id=OTHER_GUILD, user_id=ALICE, display_name="alice"),
              Member(guild_id=GUILD, user_id=BOB, display_name="bob"),
              Member(guild_id=OTHER_GUILD, user_id=BOB, display_name="bob"),
              BlockedTerm(guild_id=GUILD, kind="word", value="one", added_by=ALICE),
              BlockedTerm(guild_id=GUILD, kind="word", value="two", added_by=BOB))

    done, failed, cancelled, queued = (
        job(ALICE, JobStatus.DONE, shared, alice_only), job(ALICE, JobStatus.FAILED, alice_only),
        job(ALICE, JobStatus.CANCELLED), job(ALICE, JobStatus.QUEUED, alice_queued_input, guild_id=None),
    )
    await add(sessions, done, failed, cancelled, queued)
    world.alice_jobs = [done.id, failed.id, cancelled.id, queued.id]
    alice_results = files_under(result_folder(data_dir, done.id)) | files_under(result_folder(data_dir, failed.id,
                                                                                            (50,)))
    bob_done = job(BOB, JobStatus.DONE, shared, bob_only)
    bob_remix = job(BOB, JobStatus.QUEUED, bob_only, parent_job_id=done.id)
    await add(sessions, bob_done, bob_remix)
    bob_results = files_under(result_folder(data_dir, bob_done.id))
    # What workers elsewhere exchange with the bot: rows of jobs, which go with the job.
    await add(sessions, Worker(id="gpu-1", name="gpu", device="cpu", models=""),
              *(rows for owner in (queued, bob_remix) for rows in (
                  JobInput(job_id=owner.id, field="init_image", data=b"i"),
                  JobEvent(job_id=owner.id, kind="started"),
                  JobOutput(job_id=owner.id, name="final.png", data=b"o"))))

    first = await add_submission(sessions, data_dir, ALICE, GUILD, job_id=done.id, posted=world.alice_post)
    second = await add_submission(sessions, data_dir, ALICE, OTHER_GUILD, size=800)
    bobs = await add_submission(sessions, data_dir, BOB, GUILD, job_id=bob_done.id, posted=(40, 41), size=900)
    world.alice_submissions = [first.id, second.id]
    await add(sessions,
              Review(submission_id=first.id, reviewer_id=BOB, decision=SubmissionStatus.REVISE, feedback="f"),
              Review(submission_id=first.id, reviewer_id=BOB, decision=SubmissionStatus.APPROVED, told_by="dm"),
              Review(submission_id=bobs.id, reviewer_id=ALICE, decision=SubmissionStatus.APPROVED, feedback="g"))

    hers, his = await add_challenges(sessions, data_dir, world)
    # A generator each trained as a host; hers by a job of hers. The guild keeps both, without her name.
    await add(sessions, *(GanModel(guild_id=GUILD, name=name, created_by=host, job_id=trained_by, source="a zip",
                                   images=4, image_size=32, mirror=True, steps=10)
                          for name, host, trained_by in (("hers", ALICE, done.id), ("his", BOB, bob_done.id))))

    world.alice_files = alice_results | {alice_only, alice_queued_input, Path(first.image_path),
                                         Path(second.image_path), hers}
    world.alice_bytes = 500 + 300 + 200 + 50 + 2000 + 300 + 700 + 800 + 600
    world.kept_files = bob_results | {shared, bob_only, Path(bobs.image_path), his}
    assert files_under(data_dir) == world.alice_files | world.kept_files
    return world


async def add_challenges(sessions, data_dir: Path, world: World) -> tuple[Path, Path]:
    """Alice created one challenge and entered Bob's; each voted for the other's entry there, Carol for Bob's
    entry in hers. Returns the paths of Alice's entry image and Bob's."""
    deadlines = {"submissions_close_at": utcnow(), "voting_close_at": utcnow() + timedelta(days=1)}
    hers = Challenge(guild_id=GUILD, title="Hers", theme="t", created_by=ALICE, channel_id=20, thread_id=50,
                     phase=ChallengePhase.VOTING, **deadlines)
    his = Challenge(guild_id=GUILD, title="His", theme="t", created_by=BOB, channel_id=20,
                    thread_id=world.alice_entry_post[0], phase=ChallengePhase.VOTING, **deadlines)
    await add(sessions, hers, his)
    alice_entry = ChallengeEntry(challenge_id=his.id, user_id=ALICE, slot=1, number=1,
                                 vote_message_id=world.alice_entry_post[1])
    bob_entries = [ChallengeEntry(challenge_id=his.id, user_id=BOB, slot=1, number=2, vote_message_id=62),
                   ChallengeEntry(challenge_id=hers.id, user_id=BOB, slot=1, number=1, vote_message_id=51)]
    await add(sessions, alice_entry, *bob_entries)
    world.alice_entries = [alice_entry.id]
    images = []
    async with sessions.begin() as session:
        for entry, size in ((alice_entry, 600), (bob_entries[0], 650)):
            image = write(data_dir / "challenge-entries" / f"{entry.id}.webp", size)
            (await session.get(ChallengeEntry, entry.id)).image_path = str(image)
            images.append(image)
    await add(sessions, ChallengeVote(challenge_id=his.id, voter_id=ALICE, entry_id=bob_entries[0].id),
              ChallengeVote(challenge_id=his.id, voter_id=BOB, entry_id=alice_entry.id),
              ChallengeVote(challenge_id=hers.id, voter_id=CAROL, entry_id=bob_entries[1].id))
    return images[0], images[1]


def expected_after(before: dict[str, list[dict[str, Any]]], world: World) -> dict[str, list[dict[str, Any]]]:
    """The tables as they must be once Alice is forgotten, written out table by table."""
    after = {name: [dict(row) for row in rows] for name, rows in before.items()}
    after["jobs"] = [row | {"parent_job_id": None if row["parent_job_id"] in world.alice_jobs else row["parent_job_id"]}
                     for row in after["jobs"] if row["user_id"] != ALICE]
    for name in ("job_inputs", "job_events", "job_outputs"):
        after[name] = [row for row in after[name] if row["job_id"] not in world.alice_jobs]
    after["submissions"] = [row for row in after["submissions"] if row["user_id"] != ALICE]
    after["reviews"] = [row | {"reviewer_id": None if row["reviewer_id"] == ALICE else row["reviewer_id"]}
                        for row in after["reviews"] if row["submission_id"] not in world.alice_submissions]
    after["lesson_runs"] = [row | {"started_by": None if row["started_by"] == ALICE else row["started_by"]}
                            for row in after["lesson_runs"]]
    after["blocked_terms"] = [row | {"added_by": 0 if row["added_by"] == ALICE else row["added_by"]}
                              for row in after["blocked_terms"]]
    for name in ("moderation_events", "members", "challenge_entries"):
        after[name] = [row for row in after[name] if row["user_id"] != ALICE]
    after["challenges"] = [row | {"created_by": None if row["created_by"] == ALICE else row["created_by"]}
                           for row in after["challenges"]]
    after["gan_models"] = [row | {"created_by": None if row["created_by"] == ALICE else row["created_by"],
                                  "job_id": None if row["job_id"] in world.alice_jobs else row["job_id"]}
                           for row in after["gan_models"]]
    # Her votes go, and so do the votes others gave her entries: the counts follow.
    after["challenge_votes"] = [row for row in after["challenge_votes"]
                                if row["voter_id"] != ALICE and row["entry_id"] not in world.alice_entries]
    return after


async def test_forgetting_removes_their_rows_and_files_and_takes_their_name_off_the_rest(sessions, data_dir):
    world = await build_world(sessions, data_dir)
    before = await dump(sessions)

    report = await forget_person(sessions, data_dir, ALICE)

    await assert_nothing_names(sessions, ALICE)
    after = await dump(sessions)
    assert after == expected_after(before, world)  # Bob's rows are as they were, but for her name and her job's id
    assert all(after[table.name] for table in Base.metadata.sorted_tables)  # nothing else was emptied
    assert files_under(data_dir) == world.kept_files
    assert report == ForgetReport(jobs=4, submissions=2, reviews=2, moderation_events=2, members=2,
                                  challenge_votes=1, challenge_entries=1, files=9, bytes_freed=world.alice_bytes,
                                  posted_messages=[world.alice_post, world.alice_entry_post], anonymised=5)
    assert report.summary() == (
        "Removed 4 jobs, 2 submissions, 2 reviews of your work, 2 moderation records, 2 server memberships, "
        "1 challenge vote, 1 challenge entry and 9 files (5.5 kB of images); your name was taken off 5 records "
        "other people keep."
    )


async def test_every_column_that_names_a_person_is_removed_or_anonymised():
    """A new table with a user id must get its line in bot/privacy.py."""
    named = {(column.table.name, column.name) for column in person_columns()}
    assert named == covered_columns()


async def test_a_running_job_refuses_and_changes_nothing(sessions, data_dir):
    await build_world(sessions, data_dir)
    running = job(ALICE, JobStatus.RUNNING, started_at=utcnow() - timedelta(minutes=1))
    await add(sessions, running)
    result_folder(data_dir, running.id)
    before, files = await dump(sessions), files_under(data_dir)

    with pytest.raises(StillRunning) as refused:
        await forget_person(sessions, data_dir, ALICE)

    assert str(refused.value) == (f"Your job #{running.id} is running; cancel it with /cancel or wait for it to "
                                  "finish, then try /forget-me again.")
    assert await dump(sessions) == before
    assert files_under(data_dir) == files


async def test_paths_in_rows_never_reach_outside_their_folders(sessions, tmp_path, data_dir):
    outside = tmp_path / "outside"
    uploads, submissions = data_dir / "uploads", data_dir / "submissions"
    first = 50  # her submissions' ids: each hostile image path below carries its own row's file name
    names = [f"{first + index}.webp" for index in range(6)]
    secrets = [write(outside / name, 10) for name in ("passwd", "kept.png", "linked.png", *names)]
    secrets.append(write(tmp_path / names[1], 10))  # what data/submissions/../../<id>.webp names
    bob_image = write(submissions / "999.webp", 10)
    secrets.append(write(uploads / "kept.png", 10))  # another's upload, its name in her paths to elsewhere
    for folder in (uploads, submissions):
        folder.mkdir(exist_ok=True)
        os.symlink(outside, folder / "elsewhere", target_is_directory=True)
    os.symlink(outside / "linked.png", uploads / "linked.png")  # a link, not an upload: neither it nor its target
    os.symlink(outside / names[3], submissions / names[3])
    hostile = job(ALICE, JobStatus.DONE, outside / "passwd", Path("../../outside/kept.png"),
                  uploads / ".." / ".." / "outside" / "kept.png", uploads / "elsewhere" / "kept.png",
                  uploads / "linked.png", uploads / "elsewhere" / "..", uploads / ".")
    await add(sessions, hostile)
    (data_dir / "results").mkdir()
    os.symlink(outside, data_dir / "results" / f"job-{hostile.id}", target_is_directory=True)
    await add_exercise(sessions)
    images = [outside / names[0], submissions / ".." / ".." / names[1], bob_image, submissions / names[3],
              submissions / "elsewhere" / names[4], Path("/")]
    await add(sessions, *[Submission(id=first + index, guild_id=GUILD, user_id=ALICE, exercise_id="l1-a",
                                     latest=False, image_path=str(image)) for index, image in enumerate(images)])
    before = not_database(files_under(tmp_path))

    report = await forget_person(sessions, data_dir, ALICE)

    assert (report.jobs, report.submissions, report.files, report.bytes_freed) == (1, len(images), 0, 0)
    assert not_database(files_under(tmp_path)) == before
    assert all(secret.exists() for secret in secrets) and bob_image.exists()
    assert (data_dir / "results" / f"job-{hostile.id}").is_symlink()


async def test_a_data_folder_that_is_a_link_is_left_alone(sessions, tmp_path, data_dir):
    outside = tmp_path / "outside"
    hers = job(ALICE, JobStatus.DONE, data_dir / "uploads" / "upload.png")
    await add(sessions, hers)
    await add_exercise(sessions)
    submission = Submission(guild_id=GUILD, user_id=ALICE, exercise_id="l1-a")
    await add(sessions, submission)
    secrets = [write(outside / name, 10) for name in ("upload.png", f"{submission.id}.webp",
                                                      f"job-{hers.id}/final.png")]
    for name in ("uploads", "submissions", "results"):
        os.symlink(outside, data_dir / name, target_is_directory=True)
    async with sessions.begin() as session:
        (await session.get(Submission, submission.id)).image_path = str(data_dir / "submissions" / secrets[1].name)

    report = await forget_person(sessions, data_dir, ALICE)

    assert (report.jobs, report.submissions, report.files) == (1, 1, 0)
    assert all(secret.exists() for secret in secrets)


async def test_forgetting_twice_is_harmless(sessions, data_dir):
    world = await build_world(sessions, data_dir)
    await forget_person(sessions, data_dir, ALICE)
    after_first, files = await dump(sessions), files_under(data_dir)

    again = await forget_person(sessions, data_dir, ALICE)

    assert again == ForgetReport(jobs=0, submissions=0, reviews=0, moderation_events=0, members=0,
                                 challenge_votes=0, challenge_entries=0, files=0,
                                 bytes_freed=0, posted_messages=[], anonymised=0)
    assert again.summary() == "Nothing about you was stored here, so there was nothing to remove."
    assert await dump(sessions) == after_first and files_under(data_dir) == files == world.kept_files


async def test_someone_with_nothing_stored_changes_nothing(sessions, data_dir):
    world = await build_world(sessions, data_dir)
    before = await dump(sessions)

    report = await forget_person(sessions, data_dir, 303)

    assert report.summary() == "Nothing about you was stored here, so there was nothing to remove."
    assert await dump(sessions) == before and files_under(data_dir) == world.alice_files | world.kept_files


async def test_a_removed_jobs_result_used_by_another_job_goes_but_a_shared_upload_stays(sessions, data_dir):
    """Her result is hers: Bob's remix that read it keeps its row, and the upload they share stays for him."""
    shared = write(data_dir / "uploads" / "same.png", 10)
    hers = job(ALICE, JobStatus.DONE, shared)
    await add(sessions, hers)
    folder = result_folder(data_dir, hers.id, (10,))
    bobs = job(BOB, JobStatus.QUEUED, shared, folder / "file-0.png", parent_job_id=hers.id)
    await add(sessions, bobs)

    report = await forget_person(sessions, data_dir, ALICE)

    assert report.files == 1 and not folder.exists() and shared.exists()
    async with sessions() as session:
        kept = await session.get(Job, bobs.id)
    assert kept.parent_job_id is None and kept.user_id == BOB
