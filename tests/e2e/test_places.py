"""Queued jobs' status messages show their place and expected start, and move with few edits."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.jobs.service import Place
from bot.ui.publisher import PLACE_EDITS_PER_SECOND, worth_an_edit
from models import JobStatus
from tests.discord_fake import FakeDiscord
from tests.e2e.conftest import RunningBot, bot_settings
from tests.e2e.test_generation import FAST, job_id_of, job_row, wait_for_status

LONG = {"prompt": "a slow tide --cutn 8", "size": 64, "steps": 5000}  # about 30 s here: it runs until cancelled


@pytest.fixture
async def easel(fake: FakeDiscord, tmp_path: Path):
    running = RunningBot(bot_settings(fake, tmp_path, **(FAST | {"max_steps": 5000})))
    yield running
    await running.stop()


def status_text(fake: FakeDiscord, job) -> str:
    message = next(m for m in fake.messages(job.thread_id) if m.id == job.status_message_id)
    return message.embeds[0]["description"]


def status_edits(fake: FakeDiscord, job) -> int:
    return next(m for m in fake.messages(job.thread_id) if m.id == job.status_message_id).edits


async def test_a_start_moves_the_front_of_the_queue_and_leaves_small_moves_further_back(fake, easel):
    bot = await easel.start()
    first = await fake.answer(await fake.send_command(fake.add_member("first"), "imagine", LONG))
    first_id = int(first.content.split("#")[1].split(".")[0])
    await wait_for_status(fake, bot, first_id, JobStatus.RUNNING)
    interactions = []
    for index in range(12):
        interaction = await fake.send_command(fake.add_member(f"student{index}"), "imagine", LONG)
        await fake.answer(interaction)
        interactions.append(interaction)
    queued = [await job_row(bot, job_id_of(interaction)) for interaction in interactions]
    await fake.wait_until(lambda: all(j.status_message_id for j in queued))
    queued = [await job_row(bot, job.id) for job in queued]
    # Every status message shows its place (each receipt comes before its thread, so wait for the last edits).
    await fake.wait_until(lambda: all(f"position {index}," in status_text(fake, job)
                                      for index, job in enumerate(queued, start=1)))
    await asyncio.sleep(0.5)
    assert "position 12, starts <t:" in status_text(fake, queued[-1])  # a timestamp each client counts down
    edits_before = [status_edits(fake, job) for job in queued]

    requests_before = len(fake.requests)
    cancel = await fake.send_command(fake.owner, "cancel", {"job": first_id})
    await fake.answer(cancel)
    await wait_for_status(fake, bot, queued[0].id, JobStatus.RUNNING)
    await fake.wait_until(lambda: "position 8," in status_text(fake, queued[8]))  # the last one worth an edit
    assert "position 1," in status_text(fake, queued[1])
    moved = [status_edits(fake, job) - before for job, before in zip(queued[1:], edits_before[1:], strict=True)]
    assert moved[:8] == [1] * 8  # positions 2..9 -> 1..8: each moved by a fifth or more, one edit each
    assert moved[8:] == [0, 0, 0]  # positions 10..12 -> 9..11: a small move, no edit
    assert "position 12," in status_text(fake, queued[-1])  # still right within a fifth
    place_edits = sorted(request.at for request in fake.requests[requests_before:] if request.method == "PATCH" and any(
        request.path.endswith(f"/messages/{job.status_message_id}") for job in queued[1:]))
    gaps = [later - earlier for earlier, later in itertools.pairwise(place_edits)]
    assert len(place_edits) == 8 and min(gaps) >= 1 / PLACE_EDITS_PER_SECOND - 0.02  # within the budget

    # A queued job cancelled at the front moves the one behind it there.
    await fake.answer(await fake.send_command(fake.owner, "cancel", {"job": queued[1].id}))
    await fake.wait_until(lambda: "position 1," in status_text(fake, queued[2]))

    # A job that has moved on is never shown a place again, whatever a late refresh thinks.
    running = await job_row(bot, queued[0].id)
    before = status_text(fake, running)
    await bot.publisher.show_place(running.id, Place(3, 30.0))
    assert status_text(fake, running) == before


@pytest.mark.parametrize(("shown", "now", "edit"), [
    (None, Place(3, 10.0), True),
    (Place(2, 10.0), Place(1, 0.0), True),  # to the front
    (Place(5, 50.0), Place(4, 40.0), True),  # near the front, every step
    (Place(10, 100.0), Place(9, 90.0), False),  # a tenth of the way: not yet
    (Place(10, 100.0), Place(8, 80.0), True),  # a fifth
    (Place(50, 500.0), Place(49, 495.0), False),
])
def test_which_moves_are_worth_an_edit(shown, now, edit):
    assert worth_an_edit(shown, now) is edit


def test_a_large_shift_of_the_expected_start_is_worth_an_edit_a_small_one_is_not():
    at = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    shown = Place(30, 600.0, starts_at=at)
    assert not worth_an_edit(shown, Place(30, 630.0, starts_at=at + timedelta(seconds=30)))
    assert not worth_an_edit(shown, Place(30, 600.0, starts_at=at + timedelta(seconds=120)))  # under a quarter
    assert worth_an_edit(shown, Place(30, 900.0, starts_at=at + timedelta(seconds=300)))
