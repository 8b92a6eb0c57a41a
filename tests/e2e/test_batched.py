"""Two people's imagine jobs step together on one worker, each playing out in its own thread."""

from __future__ import annotations

from pathlib import Path

import pytest

from models import JobStatus
from tests.discord_fake import FakeDiscord
from tests.e2e.conftest import RunningBot, bot_settings
from tests.e2e.test_generation import (
    FAST,
    HOST_PERMISSIONS,
    final_message,
    imagine,
    job_id_of,
    set_queue,
    wait_for_status,
)

BATCHED = FAST | {"batch_jobs": 2, "keyframes": 3, "status_edit_seconds": 0.5}


@pytest.fixture
async def easel(fake: FakeDiscord, tmp_path: Path):
    running = RunningBot(bot_settings(fake, tmp_path, **BATCHED))
    yield running
    await running.stop()


async def test_two_peoples_jobs_progress_at_the_same_time_in_their_own_threads(fake: FakeDiscord,
                                                                                easel: RunningBot):
    bot = await easel.start()
    host = fake.add_member("teacher", permissions=HOST_PERMISSIONS)
    await set_queue(fake, host, "pause")  # both are queued before either starts
    alice, bob = fake.add_member("alice"), fake.add_member("bob")
    jobs = {}
    for person, prompt in ((alice, "a lighthouse --cutn 2"), (bob, "a red fox --cutn 3")):
        interaction = await imagine(fake, person, prompt, steps=120, size=32)
        jobs[person.id] = job_id_of(interaction)
    await set_queue(fake, host, "resume")

    # Both are running, and both have moved, at one moment.
    await fake.wait_until(lambda: all((bot.runner.step_of(job_id) or 0) >= 2 for job_id in jobs.values()),
                          timeout=60)
    queue = await fake.answer(await fake.send_command(alice, "queue"))
    first, second = sorted(jobs.values())
    assert f"Running now: jobs #{first} (imagine), #{second} (imagine)." in queue.content
    rows = {person: await wait_for_status(fake, bot, job_id, JobStatus.DONE) for person, job_id in jobs.items()}
    threads = {person: row.thread_id for person, row in rows.items()}
    assert threads[alice.id] != threads[bob.id]

    for person, row in rows.items():
        await fake.wait_until(lambda row=row: final_message(fake, row.thread_id) is not None, timeout=30)
        final = final_message(fake, row.thread_id)
        assert f"<@{person}>" in final.content and final.attachments[0].filename == f"easel-{row.id}.png"
        keyframes = [m for m in fake.messages(row.thread_id) if m.content.startswith("Step ")]
        assert len(keyframes) == 3 and all(m.content.endswith("/120") for m in keyframes)
    # Each one's progress reached its own thread while the other was still running.
    first_done, last_done = sorted(rows.values(), key=lambda row: row.finished_at)
    last_keyframe = min(m.created_at for m in fake.messages(last_done.thread_id) if m.content.startswith("Step "))
    assert last_keyframe < final_message(fake, first_done.thread_id).created_at
    assert first_done.started_at < last_done.started_at < first_done.finished_at
