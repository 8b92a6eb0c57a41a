"""The course end to end: a host opens a lesson, students try it, submit, are reviewed and see their progress.

The real bot runs against the fake Discord with a tiny course (fast CPPN presets) written to tmp_path.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from bot.art.imagefiles import save_png
from bot.jobs.spec import JobSpec
from models import Job, LessonRun, Review, Submission, SubmissionStatus
from tests.discord_fake import FakeDiscord, FakeMessage
from tests.e2e.conftest import RunningBot, bot_settings
from tests.e2e.test_generation import (
    FAST,
    HOST_PERMISSIONS,
    final_message,
    job_id_of,
    png,
    set_queue,
    wait_for_status,
)

LESSON_ONE = """\
---
number: 1
slug: patterns
title: Patterns from coordinates
summary: A small network turns x and y into colour.
links:
  reading: https://distill.pub/2018/differentiable-parameterizations/
exercises:
  - id: first-pattern
    title: First pattern
    brief: Press Try it and watch the pattern morph.
    technique: cppn
    preset:
      size: 32
      steps: 2
      layers: 3
    submit: Your favourite frame.
  - id: fit-a-picture
    title: Fit a picture
    brief: Fit the network to the harbour picture.
    technique: cppn
    preset:
      size: 24
      steps: 2
      target: images/dot.png
    submit: The fitted image.
---
# Patterns

A CPPN maps each pixel's coordinates to a colour.

## What to look for

The pattern keeps its shapes while the latent moves.
"""

LESSON_TWO = """\
---
number: 2
slug: more-patterns
title: More patterns
summary: Zoom and colour.
exercises:
  - id: zoom-out
    title: Zoom out
    brief: Try a larger zoom.
    technique: cppn
    preset:
      size: 32
      steps: 2
      zoom: 3.0
    submit: One zoomed-out pattern.
---
Zoom changes how far the coordinates reach.
"""


def write_course(folder: Path, lessons: dict[str, str]) -> Path:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), (250, 200, 20)).save(folder / "images" / "dot.png")
    for name, text in lessons.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture
def course_dir(tmp_path: Path) -> Path:
    return write_course(tmp_path / "course", {"01-patterns.md": LESSON_ONE, "02-more.md": LESSON_TWO})


@pytest.fixture
async def easel(fake: FakeDiscord, tmp_path: Path, course_dir: Path):
    running = RunningBot(bot_settings(fake, tmp_path / "data", course_dir=course_dir, **FAST))
    yield running
    await running.stop()


async def start_lesson(fake: FakeDiscord, host, number: int = 1) -> int:
    """A host's /lesson start; returns the lesson's thread id."""
    interaction = await fake.send_command(host, "lesson", {"number": number}, subcommand=["start"])
    reply = await fake.answer(interaction)
    assert reply.ephemeral and f"Lesson {number} is open" in reply.content, reply.content
    return int(reply.content.split("<#")[1].split(">")[0])


async def submit(fake: FakeDiscord, user, exercise: str, *, image: bytes | None = None, job: int | None = None,
                 note: str | None = None) -> FakeMessage:
    options: dict[str, object] = {"exercise": exercise}
    if job is not None:
        options["job"] = job
    if note is not None:
        options["note"] = note
    attachments = {"image": ("work.png", image, "image/png")} if image is not None else None
    interaction = await fake.send_command(user, "submit", options, attachments=attachments)
    return await fake.answer(interaction)


def submission_id_of(reply: FakeMessage) -> int:
    assert reply.content.startswith("Submitted #"), reply.content
    return int(reply.content.split("#")[1].split(" ")[0])


async def rows(bot, model, *where):
    async with bot.sessions() as session:
        return list(await session.scalars(select(model).where(*where)))


async def test_a_host_opens_a_lesson_and_try_it_runs_the_preset_for_whoever_pressed_it(fake, easel):
    bot = await easel.start()
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    student = fake.add_member("student")
    thread_id = await start_lesson(fake, host)

    announcement = fake.messages(fake.channel_id)[-1]
    assert "Lesson 1" in announcement.embeds[0]["title"]
    assert {"easel:try:first-pattern", "easel:try:fit-a-picture"} <= set(announcement.custom_ids())
    thread_text = "\n".join(message.content for message in fake.messages(thread_id))
    assert "A CPPN maps each pixel's coordinates" in thread_text and "What to look for" in thread_text

    pressed = await fake.press_button(student, announcement, "easel:try:fit-a-picture")
    reply = await fake.answer(pressed)
    assert reply.ephemeral
    job = await wait_for_status(fake, bot, job_id_of(pressed), "done")
    assert job.user_id == student.id and job.technique == "cppn"
    assert job.spec["config"]["size"] == 24 and Path(job.spec["config"]["target"]).name == "dot.png"

    # A job started in the lesson's thread takes the lesson's preset as its defaults; given options win.
    in_thread = await fake.send_command(student, "cppn", {"seed": 5}, channel_id=thread_id)
    await fake.answer(in_thread)
    job = await wait_for_status(fake, bot, job_id_of(in_thread), "done")
    assert (job.spec["config"]["size"], job.spec["config"]["layers"], job.seed) == (32, 3, 5)

    # Closing the lesson ends the defaults.
    ended = await fake.send_command(host, "lesson", subcommand=["end"])
    assert "Closed lesson 1" in (await fake.answer(ended)).content
    after = await fake.send_command(student, "cppn", {"seed": 5, "size": 16, "steps": 2}, channel_id=thread_id)
    await fake.answer(after)
    job = await wait_for_status(fake, bot, job_id_of(after), "done")
    assert job.spec["config"]["layers"] != 3 or job.spec["config"]["size"] == 16


async def test_only_one_lesson_is_open_per_server_and_students_cannot_open_one(fake, easel):
    bot = await easel.start()
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    student = fake.add_member("student")
    refused = await fake.send_command(student, "lesson", {"number": 1}, subcommand=["start"])
    assert "Only hosts" in (await fake.answer(refused)).content
    await start_lesson(fake, host, 1)
    again = await fake.send_command(host, "lesson", {"number": 2}, subcommand=["start"])
    assert "still open" in (await fake.answer(again)).content
    assert len(await rows(bot, LessonRun)) == 1


async def test_submit_review_progress_and_the_student_is_told(fake, easel):
    bot = await easel.start()
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    ada, bo = fake.add_member("ada"), fake.add_member("bo")
    fake.close_dms(bo)
    thread_id = await start_lesson(fake, host)

    # Autocomplete shows lesson and title, and finds by either.
    typed = await fake.autocomplete(ada, "submit", "exercise", "zoom")
    await fake.wait_for_response(typed)
    choices = typed.responses[0].data["choices"]
    assert choices == [{"name": "Lesson 2 · Zoom out", "value": "zoom-out"}]

    # Ada submits an upload, then one of her jobs; Bo submits an upload.
    first = submission_id_of(await submit(fake, ada, "first-pattern", image=png(colour=(255, 0, 0)), note="red!"))
    run = await fake.send_command(ada, "cppn", {"size": 16, "steps": 2, "seed": 3})
    await fake.answer(run)
    job = await wait_for_status(fake, bot, job_id_of(run), "done")
    second = submission_id_of(await submit(fake, ada, "first-pattern", job=job.id))
    bos = submission_id_of(await submit(fake, bo, "zoom-out", image=png(colour=(0, 0, 255)),
                                        note="@everyone look <@&1>"))

    posts = [m for m in fake.messages(thread_id) if "submitted" in m.content]
    assert len(posts) == 2  # lesson 2 was never opened: Bo's went to the channel he used
    assert f"#{second}" in posts[1].content and f"job #{job.id}" in posts[1].content and "seed 3" in posts[1].content
    assert posts[0].attachments[0].filename == f"submission-{first}.webp"
    assert not fake.pings_of(host) and all(not m.pinged_everyone for m in fake.messages(fake.channel_id))

    history = await rows(bot, Submission, Submission.user_id == ada.id)
    assert [(s.id, s.latest) for s in history] == [(first, False), (second, True)]  # the latest counts

    # Only the latest submissions wait for review, oldest first.
    queue = await fake.send_command(host, "review", subcommand=["queue"])
    listing = await fake.answer(queue)
    assert listing.ephemeral and "2 submissions waiting" in listing.content
    assert listing.custom_ids() == [f"easel:approve:{second}", f"easel:revise:{second}",
                                    f"easel:approve:{bos}", f"easel:revise:{bos}"]

    # A student can neither press a review button nor review through the modal.
    sneaky = await fake.press_button(bo, listing, f"easel:approve:{bos}")
    assert "Only this server's hosts" in (await fake.wait_for_response(sneaky)).data["content"]

    approved = await fake.press_button(host, listing, f"easel:approve:{second}")
    assert "was told by DM" in (await fake.answer(approved)).content
    dm = fake.messages(fake.dm_channel(ada))
    assert "approved" in dm[-1].content

    revise = await fake.press_button(host, listing, f"easel:revise:{bos}")
    modal = await fake.wait_for_response(revise)
    assert modal.type == 9
    sent = await fake.submit_modal(host, modal.data["custom_id"], {"feedback": "Try zoom 5 @everyone"}, listing)
    assert "lesson's thread" in (await fake.answer(sent)).content
    told = [m for m in fake.pings_of(bo)]
    assert len(told) == 1 and "Try zoom 5" in told[0].content and not told[0].pinged_everyone
    reviews = await rows(bot, Review)
    assert [(r.decision, r.told_by) for r in reviews] == [(SubmissionStatus.APPROVED, "dm"),
                                                           (SubmissionStatus.REVISE, "thread")]

    # Reviewing twice is refused; so is reviewing an old submission.
    again = await fake.press_button(host, listing, f"easel:approve:{second}")
    assert "already reviewed" in (await fake.answer(again)).content

    # Progress: your own, a host's view of anyone's, and the class overview.
    mine = await fake.send_command(ada, "progress", subcommand=["member"])
    text = (await fake.answer(mine)).content
    assert "First pattern: approved" in text and "Fit a picture: not started" in text
    nosy = await fake.send_command(ada, "progress", {"member": bo}, subcommand=["member"])
    assert "Only hosts" in (await fake.answer(nosy)).content
    hosts_view = await fake.send_command(host, "progress", {"member": bo}, subcommand=["member"])
    assert "Zoom out: revise" in (await fake.answer(hosts_view)).content
    overview = await fake.send_command(host, "progress", subcommand=["class"])
    text = (await fake.answer(overview)).content
    assert "L1 First pattern: 1 · 1 · 0 · 0" in text and "L2 Zoom out: 1 · 0 · 0 · 1" in text
    student_overview = await fake.send_command(ada, "progress", subcommand=["class"])
    assert "Only hosts" in (await fake.answer(student_overview)).content


async def test_review_is_hidden_from_students_and_buttons_survive_a_restart(fake, easel):
    bot = await easel.start()
    review = next(c for c in fake.registered_commands() if c["name"] == "review")
    assert int(review["default_member_permissions"]) == HOST_PERMISSIONS

    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    ada = fake.add_member("ada")
    submission = submission_id_of(await submit(fake, ada, "zoom-out", image=png()))
    listing = await fake.answer(await fake.send_command(host, "review", subcommand=["queue"]))
    student_try = await fake.answer(await fake.send_command(ada, "review", subcommand=["queue"]))
    assert "Only hosts" in student_try.content

    await easel.stop()
    bot = await easel.start()
    approved = await fake.press_button(host, listing, f"easel:approve:{submission}")
    assert "Approved submission" in (await fake.answer(approved)).content
    assert (await rows(bot, Submission))[0].status == SubmissionStatus.APPROVED


async def test_submissions_are_refused_with_a_reason(fake, easel):
    bot = await easel.start()
    ada, bo = fake.add_member("ada"), fake.add_member("bo")
    run = await fake.send_command(bo, "cppn", {"size": 16, "steps": 2})
    await fake.answer(run)
    bos_job = await wait_for_status(fake, bot, job_id_of(run), "done")
    cases = [
        ({"exercise": "no-such-thing"}, None, "There is no exercise"),
        ({"exercise": "zoom-out"}, None, "Submit one piece of work"),
        ({"exercise": "zoom-out", "job": bos_job.id}, None, "is not one of yours"),
        ({"exercise": "zoom-out"}, b"not an image", "not an image Easel can read"),
    ]
    for options, data, expected in cases:
        attachments = {"image": ("x.png", data, "image/png")} if data is not None else None
        reply = await fake.answer(await fake.send_command(ada, "submit", options, attachments=attachments))
        assert reply.ephemeral and expected in reply.content, reply.content
    assert await rows(bot, Submission) == []
    assert not (easel.settings.data_dir / "submissions").exists() or not any(
        (easel.settings.data_dir / "submissions").iterdir())


async def test_history_is_capped_per_exercise(fake, tmp_path, course_dir):
    running = RunningBot(bot_settings(fake, tmp_path / "data", course_dir=course_dir,
                                      max_submissions_per_exercise=2, **FAST))
    try:
        bot = await running.start()
        ada = fake.add_member("ada")
        for _ in range(2):
            submission_id_of(await submit(fake, ada, "zoom-out", image=png()))
        third = await submit(fake, ada, "zoom-out", image=png())
        assert "the most this server keeps" in third.content
        assert len(await rows(bot, Submission)) == 2
    finally:
        await running.stop()


async def test_gallery_has_one_tile_per_latest_submission(fake, easel):
    await easel.start()
    students = [fake.add_member(f"student{n}") for n in range(3)]
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    for student, colour in zip(students, colours, strict=True):
        await submit(fake, student, "first-pattern", image=png(colour=(9, 9, 9)))  # replaced next
        await submit(fake, student, "first-pattern", image=png((64, 64), colour))
    empty = await fake.answer(await fake.send_command(students[0], "gallery", {"lesson": 2}))
    assert empty.ephemeral and "Nobody has submitted" in empty.content

    interaction = await fake.send_command(students[0], "gallery", {"lesson": 1})
    post = await fake.answer(interaction)
    assert not post.ephemeral and "3 submissions" in post.content
    sheet = Image.open(io.BytesIO(post.attachments[0].data)).convert("RGB")
    from bot.art.contact_sheet import sheet_grid

    grid = sheet_grid(3, titled=True)
    assert sheet.size == grid.size
    for index, colour in enumerate(colours):
        x, y = grid.origin(index)
        pixel = sheet.getpixel((x + grid.tile_side // 2, y + grid.tile_side // 2))
        assert all(abs(a - b) < 40 for a, b in zip(pixel, colour, strict=True)), (index, pixel)


async def test_forget_me_leaves_nothing_of_the_person(fake, easel):
    bot = await easel.start()
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    ada, bo = fake.add_member("ada"), fake.add_member("bo")
    await start_lesson(fake, host)
    for person in (ada, bo):
        run = await fake.send_command(person, "cppn", {"size": 16, "steps": 2})
        await fake.answer(run)
        job = await wait_for_status(fake, bot, job_id_of(run), "done")
        await submit(fake, person, "first-pattern", job=job.id)
        await submit(fake, person, "zoom-out", image=png(colour=(1, 2, 3)), note="mine")
    listing = await fake.answer(await fake.send_command(host, "review", subcommand=["queue"]))
    for custom_id in listing.custom_ids():
        if custom_id.startswith("easel:approve:"):
            await fake.answer(await fake.press_button(host, listing, custom_id))
    def posts_naming(person) -> list[FakeMessage]:
        everywhere = fake.messages(fake.channel_id) + [m for thread in fake.threads for m in fake.messages(thread)]
        return [message for message in everywhere if f"<@{person.id}>" in message.content]

    ada_posts, bo_posts = posts_naming(ada), posts_naming(bo)
    assert any("submitted" in m.content for m in ada_posts) and any("job is done" in m.content for m in ada_posts)

    asked = await fake.send_command(ada, "forget-me")
    confirm = await fake.wait_for_response(asked)
    assert confirm.ephemeral and confirm.data["components"]
    message = interaction_message(fake, asked)
    stranger = await fake.press_button(bo, message, f"easel:forget:{ada.id}")
    assert "someone else's" in (await fake.wait_for_response(stranger)).data["content"]
    pressed = await fake.press_button(ada, message, f"easel:forget:{ada.id}")
    assert "Removed" in (await fake.answer(pressed)).content

    from tests.test_privacy import assert_nothing_names  # the same scan as the service's own tests

    await assert_nothing_names(bot.sessions, ada.id)
    bo_jobs = await rows(bot, Job, Job.user_id == bo.id)
    result_folders = {path.name for path in (easel.settings.data_dir / "results").iterdir()}
    assert result_folders == {f"job-{job.id}" for job in bo_jobs}
    submission_files = {path.name for path in (easel.settings.data_dir / "submissions").iterdir()}
    assert submission_files == {f"{s.id}.webp" for s in await rows(bot, Submission)}
    assert all(message.deleted for message in ada_posts) and not posts_naming(ada)
    assert not any(message.deleted for message in bo_posts)
    assert len(await rows(bot, Submission)) == 2  # Bo's


def interaction_message(fake: FakeDiscord, interaction) -> FakeMessage:
    """The message a command answered with directly (type 4), as the fake stored it."""
    assert interaction.original is not None
    return interaction.original


async def test_sync_follows_the_files_edited_and_removed_lessons(fake, tmp_path, course_dir):
    running = RunningBot(bot_settings(fake, tmp_path / "data", course_dir=course_dir, **FAST))
    try:
        bot = await running.start()
        ada = fake.add_member("ada")
        await submit(fake, ada, "zoom-out", image=png())
        await running.stop()

        (course_dir / "01-patterns.md").write_text(LESSON_ONE.replace("Patterns from coordinates",
                                                                      "Patterns from x and y"))
        (course_dir / "02-more.md").unlink()
        bot = await running.start()
        listing = await fake.answer(await fake.send_command(ada, "lesson", subcommand=["list"]))
        assert "Patterns from x and y" in listing.content and "More patterns" not in listing.content
        gone = await fake.answer(await fake.send_command(ada, "lesson", {"number": 2}, subcommand=["show"]))
        assert "There is no lesson 2" in gone.content
        assert len(await rows(bot, Submission)) == 1  # the hidden lesson's submissions are kept

        # A broken file changes nothing at start-up.
        (course_dir / "01-patterns.md").write_text("---\nnumber: [\n---\n")
        await running.stop()
        bot = await running.start()
        listing = await fake.answer(await fake.send_command(ada, "lesson", subcommand=["list"]))
        assert "Patterns from x and y" in listing.content
    finally:
        await running.stop()


async def test_the_shipped_course_loads_and_its_first_lesson_shows(fake, tmp_path):
    running = RunningBot(bot_settings(fake, tmp_path / "data", **FAST))
    try:
        await running.start()
        reader = fake.add_member("reader")
        listing = await fake.answer(await fake.send_command(reader, "lesson", subcommand=["list"]))
        assert listing.content.count("exercises") >= 6
        shown = await fake.answer(await fake.send_command(reader, "lesson", {"number": 1}, subcommand=["show"]))
        assert shown.embeds[0]["title"].startswith("Lesson 1") and shown.custom_ids()
    finally:
        await running.stop()


async def test_try_it_goes_through_the_queue_caps_and_a_student_cannot_fake_a_review_modal(fake, easel):
    bot = await easel.start()
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    ada = fake.add_member("ada")
    shown = await fake.answer(await fake.send_command(ada, "lesson", {"number": 1}, subcommand=["show"]))
    await set_queue(fake, host, "pause")
    # FAST allows three waiting jobs per person, also when four presses arrive at once.
    presses = await asyncio.gather(*(fake.press_button(ada, shown, "easel:try:first-pattern") for _ in range(4)))
    answers = sorted([(await fake.answer(pressed)).content for pressed in presses], key=lambda text: "jobs" in text)
    assert [text.startswith("Queued job #") for text in answers] == [True, True, True, False]
    assert "jobs waiting" in answers[-1]
    assert len(await rows(bot, Job, Job.user_id == ada.id)) == 3

    # An unfinished job cannot be submitted.
    waiting = job_id_of_text(answers[0])
    refused = await submit(fake, ada, "first-pattern", job=waiting)
    assert "has not finished" in refused.content

    # The feedback modal checks who submits it, not only who opened it.
    submission = submission_id_of(await submit(fake, ada, "zoom-out", image=png()))
    listing = await fake.answer(await fake.send_command(host, "review", subcommand=["queue"]))
    student_press = await fake.press_button(ada, listing, f"easel:revise:{submission}")
    assert "Only this server's hosts" in (await fake.wait_for_response(student_press)).data["content"]
    opened = await fake.wait_for_response(await fake.press_button(host, listing, f"easel:revise:{submission}"))
    forged = await fake.submit_modal(ada, opened.data["custom_id"], {"feedback": "approve myself"}, listing)
    assert "Only this server's hosts" in (await fake.answer(forged)).content
    assert await rows(bot, Review) == []


async def test_the_gallery_is_drawn_off_the_event_loop(fake, easel, monkeypatch):
    import threading

    import bot.art.contact_sheet

    drawn_on: list[bool] = []
    real = bot.art.contact_sheet.contact_sheets

    def recording(*args, **kwargs):
        drawn_on.append(threading.current_thread() is threading.main_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(bot.art.contact_sheet, "contact_sheets", recording)  # the cog imports it when it loads
    await easel.start()
    ada = fake.add_member("ada")
    await submit(fake, ada, "zoom-out", image=png())
    post = await fake.answer(await fake.send_command(ada, "gallery", {"lesson": 2}))
    assert post.attachments and drawn_on == [False]


def job_id_of_text(text: str) -> int:
    return int(text.split("Queued job #")[1].split(".")[0])


async def test_a_recipe_round_trips_from_a_posted_png(fake, easel):
    bot = await easel.start()
    ada, bo = fake.add_member("ada"), fake.add_member("bo")
    run = await fake.send_command(ada, "cppn", {"size": 16, "steps": 2, "seed": 9, "flags": "--layers 3"})
    await fake.answer(run)
    original = await wait_for_status(fake, bot, job_id_of(run), "done")
    await fake.wait_until(lambda: final_message(fake, original.thread_id) is not None)
    posted = final_message(fake, original.thread_id).attachments[0]
    assert posted.filename == f"easel-{original.id}.png"

    shown = await fake.send_command(bo, "recipe", attachments={"image": (posted.filename, posted.data, "image/png")})
    reply = await fake.answer(shown)
    assert reply.ephemeral and "seed 9" in reply.content and "layers=3" in reply.content
    pressed = await fake.press_button(bo, reply, "easel:recipe:run")
    await fake.answer(pressed)
    again = await wait_for_status(fake, bot, job_id_of(pressed), "done")
    assert again.user_id == bo.id and again.spec["config"] == original.spec["config"] and again.seed == 9
    with Image.open(original.result_path) as first, Image.open(again.result_path) as second:
        assert first.tobytes() == second.tobytes()

    # A recipe whose inputs are someone else's, from a place this person cannot see, asks for them again.
    target = await fake.send_command(ada, "cppn", {"size": 16, "steps": 2},
                                     attachments={"target": ("t.png", png(), "image/png")},
                                     channel_id=fake.dm_channel(ada))
    await fake.answer(target)
    fitted = await wait_for_status(fake, bot, job_id_of(target), "done")
    recipe_png = io.BytesIO()
    save_png(Image.new("RGB", (8, 8)), recipe_png, JobSpec.from_dict(fitted.spec).png_metadata(job_id=fitted.id))
    shown = await fake.send_command(bo, "recipe", attachments={"image": ("r.png", recipe_png.getvalue(), "image/png")})
    pressed = await fake.press_button(bo, await fake.answer(shown), "easel:recipe:run")
    assert "attach them again" in (await fake.answer(pressed)).content

    # A recipe cannot borrow the images of a visible job made with another technique.
    forged = io.BytesIO()
    style = JobSpec.from_dict({"technique": "style", "seed": 1, "config": {"content": "a.png", "style": "b.png"}})
    save_png(Image.new("RGB", (8, 8)), forged, style.png_metadata(job_id=original.id))
    shown = await fake.send_command(bo, "recipe", attachments={"image": ("f.png", forged.getvalue(), "image/png")})
    pressed = await fake.press_button(bo, await fake.answer(shown), "easel:recipe:run")
    assert "attach them again" in (await fake.answer(pressed)).content

    not_easel = await fake.answer(await fake.send_command(bo, "recipe", attachments={"image": ("x.png", png(),
                                                                                                 "image/png")}))
    assert not_easel.ephemeral and "no Easel recipe" in not_easel.content


async def test_recipe_shows_no_prompt_this_server_blocks(fake, easel):
    bot = await easel.start()
    await bot.moderation.add_term(fake.guild_id, "word", "forbidden", added_by=fake.owner.id)
    blocked = io.BytesIO()
    spec = JobSpec.from_dict({"technique": "imagine", "seed": 1, "config": {"prompt": "a forbidden tower"}})
    save_png(Image.new("RGB", (8, 8)), blocked, spec.png_metadata(job_id=1))
    reader = fake.add_member("reader")
    shown = await fake.send_command(reader, "recipe", attachments={"image": ("b.png", blocked.getvalue(), "image/png")})
    reply = await fake.answer(shown)
    assert "not allowed on this server" in reply.content and not reply.attachments
