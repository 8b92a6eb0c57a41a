"""Generation end to end: slash commands become jobs, jobs play out in threads, buttons survive restarts.

The real bot runs against the fake Discord with the tiny CLIP (random weights) on the CPU.
"""

from __future__ import annotations

import asyncio
import io
import signal
from pathlib import Path

import discord
import pytest
from PIL import Image

from bot import db
from bot.jobs.repository import JobRepository
from models import JobStatus
from tests.discord_fake import FakeDiscord, FakeMessage
from tests.e2e.conftest import RunningBot, bot_settings, start_bot_process, stop_bot_process

EPHEMERAL = 64
DEFERRED = 5
FAST = {"status_edit_seconds": 0.05, "progress_every": 2, "keyframes": 2, "max_queued_per_user": 3}
HOST_PERMISSIONS = discord.Permissions(manage_guild=True).value


@pytest.fixture
async def easel(fake: FakeDiscord, tmp_path: Path):
    running = RunningBot(bot_settings(fake, tmp_path, **FAST))
    yield running
    await running.stop()


def png(size: tuple[int, int] = (32, 32), colour: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def thread_messages(fake: FakeDiscord, thread_id: int) -> list[FakeMessage]:
    return fake.messages(thread_id)


def final_message(fake: FakeDiscord, thread_id: int) -> FakeMessage | None:
    finals = [m for m in fake.messages(thread_id) if "easel:reroll:" in " ".join(m.custom_ids())]
    assert len(finals) <= 1, "the final image was posted more than once"
    return finals[0] if finals else None


async def job_row(bot, job_id: int):
    return await JobRepository(bot.sessions).get(job_id)


async def wait_for_status(fake: FakeDiscord, bot, job_id: int, status: JobStatus, within: float = 60.0):
    """Polls the job's row until it has `status`; returns the row."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        job = await job_row(bot, job_id)
        if job is not None and job.status == status:
            return job
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"job {job_id} is {job and job.status}, not {status}")
        await asyncio.sleep(0.05)


async def set_queue(fake: FakeDiscord, host, action: str) -> None:
    """A host's /easel queue pause|resume, waited for until the bot confirms it."""
    interaction = await fake.send_command(host, "easel", subcommand=["queue", action])
    expected = {"pause": "Paused", "resume": "Resumed"}[action]
    await fake.wait_until(lambda: interaction.original is not None and expected in interaction.original.content)


async def imagine(fake: FakeDiscord, user, prompt: str, **options):
    """Runs /imagine; returns once the receipt is complete (it names the job's thread, or says why not)."""
    interaction = await fake.send_command(user, "imagine", {"prompt": prompt, **options})
    await fake.wait_until(lambda: receipt_complete(interaction), timeout=30)
    return interaction


def receipt_complete(interaction) -> bool:
    """The receipt comes at once; the thread's link (or why there is none) is added to it a moment later."""
    content = interaction.original.content if interaction.original is not None else ""
    return bool(content) and ("Queued job #" not in content or "opens in a moment" not in content)


def job_id_of(interaction) -> int:
    content = interaction.original.content
    assert "Queued job #" in content, content
    return int(content.split("Queued job #")[1].split(".")[0])


async def test_imagine_plays_out_in_a_thread(fake: FakeDiscord, easel: RunningBot):
    bot = await easel.start()
    student = fake.add_member("student")
    interaction = await fake.send_command(
        student, "imagine", {"prompt": "a lighthouse in a storm | fog:0.5 --cutn 4", "steps": 8, "size": 64}
    )
    first = await fake.wait_for_response(interaction, timeout=3.0)
    assert first.type == DEFERRED and first.data["flags"] & EPHEMERAL
    assert first.at - interaction.dispatched_at < 3.0
    await fake.wait_until(lambda: interaction.original is not None and interaction.original.content, timeout=30)
    job_id = job_id_of(interaction)
    assert "position 1" in interaction.original.content

    job = await wait_for_status(fake, bot, job_id, JobStatus.DONE)
    thread = fake.threads[job.thread_id]
    assert thread.parent_id == fake.channel_id and "lighthouse" in thread.name
    await fake.wait_until(lambda: final_message(fake, job.thread_id) is not None)

    status = fake.get_message(job.status_message_id)
    assert status.edits >= 2  # running, progress frames, done
    assert "Done" in status.embeds[0]["description"] and not status.custom_ids()
    keyframes = [m for m in thread_messages(fake, job.thread_id) if m.content.startswith("Step ")]
    assert len(keyframes) == 2

    final = final_message(fake, job.thread_id)
    assert f"<@{student.id}>" in final.content
    names = [attachment.filename for attachment in final.attachments]
    assert names == [f"easel-{job_id}.png", f"easel-{job_id}-steps.gif", f"easel-{job_id}-loss.png"]
    image = Image.open(io.BytesIO(final.attachments[0].data))
    assert image.size == (64, 64)
    assert any(field["name"] == "Seed" for field in final.embeds[0]["fields"])
    assert "random" in str(final.embeds[0]).lower()  # tiny CLIP with random weights says so


async def test_a_clamped_value_is_reported(fake: FakeDiscord, easel: RunningBot):
    await easel.start()
    interaction = await imagine(fake, fake.add_member("student"), "a cat --cutn 2", steps=5000, size=64)
    assert "steps" in interaction.original.content and "1000" in interaction.original.content


async def test_two_people_are_served_round_robin(fake: FakeDiscord, easel: RunningBot):
    bot = await easel.start()
    host = fake.add_member("teacher", permissions=HOST_PERMISSIONS)
    await set_queue(fake, host, "pause")

    alice, bob = fake.add_member("alice"), fake.add_member("bob")
    submitted = []
    for user in (alice, alice, alice, bob, bob):
        interaction = await fake.send_command(user, "cppn", {"size": 32, "steps": 2})
        await fake.wait_until(lambda i=interaction: i.original is not None and i.original.content, timeout=30)
        submitted.append((user.id, job_id_of(interaction)))

    await set_queue(fake, host, "resume")
    jobs = [await wait_for_status(fake, bot, job_id, JobStatus.DONE) for _, job_id in submitted]
    order = [job.user_id for job in sorted(jobs, key=lambda job: job.started_at)]
    assert order == [alice.id, bob.id, alice.id, bob.id, alice.id]


async def test_a_restart_in_the_middle_of_a_job_finishes_it_once(fake: FakeDiscord, easel: RunningBot):
    bot = await easel.start()
    student = fake.add_member("student")
    interaction = await imagine(fake, student, "slow clouds --cutn 2", steps=400, size=32)
    job_id = job_id_of(interaction)
    await wait_for_status(fake, bot, job_id, JobStatus.RUNNING)
    await fake.wait_until(lambda: (bot.runner.step_of(job_id) or 0) >= 2, timeout=30)
    before = await job_row(bot, job_id)
    await easel.stop()  # a clean stop: the job goes back to the queue between two steps

    requeued = await job_row(bot, job_id)
    assert requeued.status == JobStatus.QUEUED and requeued.attempts == 0

    fake.advance_clock(5.0)  # a restart takes a few seconds: the old process's edits are out of Discord's window
    bot = await easel.start()
    job = await wait_for_status(fake, bot, job_id, JobStatus.DONE, within=120)
    assert job.thread_id == before.thread_id and job.status_message_id == before.status_message_id
    await fake.wait_until(lambda: final_message(fake, job.thread_id) is not None)
    assert [thread.name for thread in fake.threads.values()] == ["#1 slow clouds"]
    mentions = [m for m in fake.messages(job.thread_id) if f"<@{student.id}>" in m.content]
    assert len(mentions) == 1


async def test_a_job_left_running_by_a_crash_is_requeued_then_failed_after_a_second(fake, easel):
    bot = await easel.start()
    student = fake.add_member("student")
    host = fake.add_member("teacher", permissions=HOST_PERMISSIONS)
    await set_queue(fake, host, "pause")
    first = job_id_of(await imagine(fake, student, "crash one --cutn 2", steps=4, size=32))
    second = job_id_of(await imagine(fake, student, "crash two --cutn 2", steps=4, size=32))
    repository = JobRepository(bot.sessions)
    await repository.transition(first, JobStatus.QUEUED, JobStatus.RUNNING, attempts=1)  # as if it crashed once
    await repository.transition(second, JobStatus.QUEUED, JobStatus.RUNNING, attempts=2)  # and twice
    await easel.stop()
    # The clean stop left both rows running, as a crash would have.

    threads_before = set(fake.threads)
    bot = await easel.start()
    failed = await job_row(bot, second)
    assert failed.status == JobStatus.FAILED
    await fake.wait_until(lambda: any("failed" in m.content for m in fake.messages(failed.thread_id)))
    requeued = await job_row(bot, first)
    assert requeued.status == JobStatus.QUEUED
    await fake.wait_until(
        lambda: "Back in the queue" in fake.get_message(requeued.status_message_id).embeds[0]["description"])
    await set_queue(fake, host, "resume")
    done = await wait_for_status(fake, bot, first, JobStatus.DONE)
    await fake.wait_until(lambda: final_message(fake, done.thread_id) is not None)

    assert set(fake.threads) == threads_before  # both jobs kept their threads
    for job_id in (first, second):
        thread_id = (await job_row(bot, job_id)).thread_id
        assert sum(f"<@{student.id}>" in m.content for m in fake.messages(thread_id)) == 1  # one ping each


async def test_cancel_from_the_button_and_from_the_command(fake: FakeDiscord, easel: RunningBot):
    bot = await easel.start()
    student = fake.add_member("student")
    running_id = job_id_of(await imagine(fake, student, "long one --cutn 2", steps=1000, size=32))
    queued_id = job_id_of(await imagine(fake, student, "waiting one --cutn 2", steps=4, size=32))
    running = await wait_for_status(fake, bot, running_id, JobStatus.RUNNING)

    queued = await job_row(bot, queued_id)
    status_message = fake.get_message(queued.status_message_id)
    other = fake.add_member("someone-else")
    refused = await fake.press_button(other, status_message, f"easel:cancel:{queued_id}")
    await fake.wait_until(lambda: refused.original is not None and refused.original.content)
    assert "only cancel your own" in refused.original.content
    pressed = await fake.press_button(student, status_message, f"easel:cancel:{queued_id}")
    await fake.wait_until(lambda: pressed.original is not None and "Cancelled" in pressed.original.content)
    assert (await job_row(bot, queued_id)).status == JobStatus.CANCELLED

    command = await fake.send_command(student, "cancel", {"job": running_id})
    await fake.wait_until(lambda: command.original is not None and command.original.content)
    assert "Stopping job" in command.original.content
    await wait_for_status(fake, bot, running_id, JobStatus.CANCELLED)
    await fake.wait_until(lambda: "Cancelled" in fake.get_message(running.status_message_id).embeds[0]["description"])


@pytest.mark.parametrize("case", ["not an image", "too large", "blocked word", "over the cap"])
async def test_refusals_leave_no_job(fake: FakeDiscord, tmp_path: Path, case: str):
    running = RunningBot(bot_settings(fake, tmp_path, **(FAST | {"max_upload_bytes": 4096})))
    bot = await running.start()
    try:
        student = fake.add_member("student")
        host = fake.add_member("teacher", permissions=HOST_PERMISSIONS)
        expected = {
            "not an image": "PNG, JPEG, WebP or GIF", "too large": "the limit is",
            "blocked word": "do not allow that prompt", "over the cap": "jobs waiting",
        }[case]
        if case == "blocked word":
            add = await fake.send_command(host, "easel", {"kind": "word", "value": "gore"},
                                          subcommand=["moderation", "add"])
            await fake.wait_until(lambda: add.original is not None and "Blocked" in add.original.content)
        if case == "over the cap":
            await set_queue(fake, host, "pause")
            for _ in range(3):
                await imagine(fake, student, "fine prompt --cutn 2", steps=2, size=32)
        jobs_before = len(await bot.job_repository.active_for_user(student.id))

        attachments = None
        options = {"prompt": "a GORE scene" if case == "blocked word" else "a calm sea --cutn 2", "size": 32}
        if case == "not an image":
            attachments = {"init_image": ("notes.txt", b"hello, not an image", "text/plain")}
        if case == "too large":
            attachments = {"init_image": ("big.png", png((256, 256)) + b"\0" * 8192, "image/png")}
        interaction = await fake.send_command(student, "imagine", options, attachments=attachments)
        await fake.wait_until(lambda: interaction.original is not None and interaction.original.content)
        assert interaction.original.ephemeral
        assert expected in interaction.original.content
        assert len(await bot.job_repository.active_for_user(student.id)) == jobs_before
        if case == "blocked word":
            refusals = await bot.moderation.recent_refusals(fake.guild_id)
            assert refusals and refusals[0].user_id == student.id
    finally:
        await running.stop()


async def test_buttons_pressed_after_a_restart_work(fake: FakeDiscord, easel: RunningBot):
    bot = await easel.start()
    student = fake.add_member("student")
    job_id = job_id_of(await imagine(fake, student, "a red kite --cutn 2", steps=2, size=32))
    job = await wait_for_status(fake, bot, job_id, JobStatus.DONE)
    await fake.wait_until(lambda: final_message(fake, job.thread_id) is not None)
    await easel.stop()

    bot = await easel.start()
    final = final_message(fake, job.thread_id)
    params = await fake.press_button(student, final, f"easel:params:{job_id}")
    response = await fake.wait_for_response(params)
    assert response.data["flags"] & EPHEMERAL and f"seed {job.seed}" in response.data["content"]

    reroll = await fake.press_button(student, final, f"easel:reroll:{job_id}")
    await fake.wait_until(lambda: reroll.original is not None and "Queued job #" in reroll.original.content)
    new_job = await job_row(bot, job_id_of(reroll))
    assert new_job.parent_job_id == job_id and new_job.spec["config"] == job.spec["config"]
    # Pressed inside the first job's thread, the new job gets its own thread in the channel.
    await fake.wait_until(lambda: len(fake.threads) == 2)
    assert new_job.channel_id == fake.channel_id

    remix = await fake.press_button(student, final, f"easel:remix:{job_id}")
    modal = await fake.wait_for_response(remix)
    assert modal.type == 9
    submitted = await fake.submit_modal(student, modal.data["custom_id"],
                                        {"prompt": "a blue kite", "options": "--steps 2 --size 32 --cutn 2"})
    await fake.wait_until(lambda: submitted.original is not None and "Queued job #" in submitted.original.content)
    remixed = await job_row(bot, job_id_of(submitted))
    assert remixed.spec["config"]["prompt"] == "a blue kite"

    cont = await fake.press_button(student, final, f"easel:continue:{job_id}")
    await fake.wait_until(lambda: cont.original is not None and cont.original.content)
    continued = await job_row(bot, job_id_of(cont))
    assert continued.spec["config"]["init_image"] == job.result_path


async def test_queue_and_job_commands(fake: FakeDiscord, easel: RunningBot):
    bot = await easel.start()
    student = fake.add_member("student")
    host = fake.add_member("teacher", permissions=HOST_PERMISSIONS)
    await set_queue(fake, host, "pause")
    job_id = job_id_of(await imagine(fake, student, "a quiet pond --cutn 2", steps=2, size=32))
    queue = await fake.send_command(student, "queue")
    await fake.wait_until(lambda: queue.original is not None and queue.original.content)
    assert queue.original.ephemeral
    assert f"#{job_id} imagine: a quiet pond" in queue.original.content and "paused" in queue.original.content

    await set_queue(fake, host, "resume")
    await wait_for_status(fake, bot, job_id, JobStatus.DONE)
    shown = await fake.send_command(fake.add_member("friend"), "job", {"id": job_id})
    await fake.wait_until(lambda: shown.original is not None and shown.original.attachments)
    assert not shown.original.ephemeral  # shown to the channel
    assert shown.original.attachments[0].filename == f"easel-{job_id}.png"
    assert f"easel:reroll:{job_id}" in shown.original.custom_ids()


async def test_without_threads_the_job_plays_out_in_the_channel(fake: FakeDiscord, easel: RunningBot):
    bot = await easel.start()
    fake.fail_thread_creation(160006)  # the guild's cap on active threads
    job_id = job_id_of(await imagine(fake, fake.add_member("student"), "no threads --cutn 2", steps=2, size=32))
    job = await wait_for_status(fake, bot, job_id, JobStatus.DONE)
    assert job.thread_id == fake.channel_id and not fake.threads
    await fake.wait_until(lambda: final_message(fake, fake.channel_id) is not None)


async def test_rate_limited_status_edits_back_off_and_go_on(fake: FakeDiscord, easel: RunningBot):
    bot = await easel.start()
    fake.rate_limit_next(3, route_contains="/messages/", retry_after=0.2)  # short: discord.py retries these
    job_id = job_id_of(await imagine(fake, fake.add_member("student"), "slow down --cutn 2", steps=20, size=32))
    job = await wait_for_status(fake, bot, job_id, JobStatus.DONE)
    await fake.wait_until(lambda: final_message(fake, job.thread_id) is not None)
    statuses = [request.status for request in fake.requests if "/messages/" in request.path]
    assert statuses.count(429) == 3 and statuses[-1] < 300


async def test_a_long_rate_limit_on_status_edits_makes_the_bot_wait_and_the_result_still_comes(fake, easel):
    bot = await easel.start()
    job_id = job_id_of(await imagine(fake, fake.add_member("student"), "slow down --cutn 2", steps=200, size=32))
    await wait_for_status(fake, bot, job_id, JobStatus.RUNNING)
    status_id = (await job_row(bot, job_id)).status_message_id
    await fake.wait_until(lambda: fake.get_message(status_id).edits >= 2, timeout=30)
    fake.rate_limit_next(1, route_contains=f"/messages/{status_id}", retry_after=60)  # beyond discord.py's wait
    job = await wait_for_status(fake, bot, job_id, JobStatus.DONE, within=120)
    await fake.wait_until(lambda: final_message(fake, job.thread_id) is not None)
    edits = [request for request in fake.requests if request.path.endswith(f"/messages/{status_id}")]
    limited = next(index for index, request in enumerate(edits) if request.status == 429)
    assert len(edits) - limited - 1 == 1  # backed off: only the final "Done" edit came after the 429
    assert "Done" in fake.get_message(status_id).embeds[0]["description"]


async def test_many_frames_make_few_status_edits_within_discords_limit(fake, easel):
    bot = await easel.start()
    job_id = job_id_of(await imagine(fake, fake.add_member("student"), "many frames --cutn 2", steps=300, size=32))
    job = await wait_for_status(fake, bot, job_id, JobStatus.DONE, within=120)
    await fake.wait_until(lambda: final_message(fake, job.thread_id) is not None)
    edits = [request.at for request in fake.requests if request.path.endswith(f"/messages/{job.status_message_id}")]
    frames = 300 // FAST["progress_every"]
    assert len(edits) < frames / 4
    assert all(sum(start <= at < start + 5.0 for at in edits) <= 5 for start in edits)


async def test_hosts_lower_the_limits_and_jobs_are_clamped_to_them(fake: FakeDiscord, easel: RunningBot):
    await easel.start()
    host = fake.add_member("teacher", permissions=HOST_PERMISSIONS)
    limits = await fake.send_command(host, "easel", {"max_steps": 50}, subcommand=["limits"])
    await fake.wait_until(lambda: limits.original is not None and "Saved." in limits.original.content)
    assert "50 steps" in limits.original.content
    interaction = await imagine(fake, fake.add_member("student"), "a cat --cutn 2", steps=80, size=32)
    assert "steps clamped to 50" in interaction.original.content


async def test_sigterm_stops_the_running_job_between_steps_and_keeps_it(fake: FakeDiscord, tmp_path: Path):
    """The bot as a process: SIGTERM mid-job exits cleanly and leaves the job queued for the next start."""
    process = await start_bot_process(fake, tmp_path, PROGRESS_EVERY="1", STATUS_EDIT_SECONDS="0.1")
    try:
        interaction = await imagine(fake, fake.add_member("student"), "a long night --cutn 2", steps=1000, size=32)
        await fake.wait_until(lambda: any(m.edits >= 2 for m in fake.messages(next(iter(fake.threads)))), timeout=60)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 60) == 0
    finally:
        await stop_bot_process(process)

    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'easel.db'}")
    try:
        job = await JobRepository(db.create_session_factory(engine)).get(job_id_of(interaction))
    finally:
        await engine.dispose()
    assert job.status == JobStatus.QUEUED and job.attempts == 0
    assert 0 < job.progress_step < 1000  # it stopped part way, between steps
    shown = fake.get_message(job.status_message_id).embeds[0]["description"]
    assert f"Back in the queue: its worker stopped after step {job.progress_step}/1000" in shown


async def test_an_unknown_job_number_is_answered_privately(fake: FakeDiscord, easel: RunningBot):
    await easel.start()
    interaction = await fake.send_command(fake.add_member("student"), "job", {"id": 4242})
    response = await fake.wait_for_response(interaction)
    assert response.type == 4 and response.data["flags"] & EPHEMERAL
    assert "no job #4242" in response.data["content"]


async def test_a_channel_the_bot_may_not_post_in_still_queues_the_job_and_says_why(fake: FakeDiscord, easel):
    bot = await easel.start()
    fake.deny_bot_posting(fake.channel_id)
    interaction = await imagine(fake, fake.add_member("student"), "quiet --cutn 2", steps=2, size=32)
    assert interaction.original.ephemeral and "may not post" in interaction.original.content
    job = await wait_for_status(fake, bot, job_id_of(interaction), JobStatus.DONE)
    assert job.final_message_id is None and fake.messages(fake.channel_id) == []


async def test_a_result_that_never_reached_discord_is_posted_after_a_restart(fake: FakeDiscord, easel: RunningBot):
    bot = await easel.start()
    student = fake.add_member("student")
    fake.deny_bot_posting(fake.channel_id)  # nothing the bot posts gets through
    job_id = job_id_of(await imagine(fake, student, "late news --cutn 2", steps=2, size=32))
    await wait_for_status(fake, bot, job_id, JobStatus.DONE)
    await easel.stop()
    assert (await job_row(bot, job_id)).final_message_id is None

    fake.deny_bot_posting(fake.channel_id, denied=False)
    bot = await easel.start()
    await fake.wait_until(lambda: any(final_message(fake, thread) for thread in fake.threads), timeout=30)
    job = await job_row(bot, job_id)
    assert job.final_message_id is not None and f"<@{student.id}>" in fake.get_message(job.final_message_id).content


async def test_an_attached_image_prompt_reaches_the_job(fake: FakeDiscord, easel: RunningBot):
    bot = await easel.start()
    interaction = await fake.send_command(
        fake.add_member("student"), "imagine", {"prompt": "like this --cutn 2", "steps": 2, "size": 32},
        attachments={"image_prompt": ("look.png", png(), "image/png")},
    )
    await fake.wait_until(lambda: interaction.original is not None and interaction.original.content, timeout=30)
    job = await wait_for_status(fake, bot, job_id_of(interaction), JobStatus.DONE)
    assert job.spec["config"]["image_prompt"].endswith(".png")
