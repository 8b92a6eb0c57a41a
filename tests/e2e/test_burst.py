"""A host says "everyone, try it now": 100 members run /imagine in the same moment, on both engines.

Every command is deferred within Discord's deadline (the fake refuses a late first response, and the
fixture fails the test on any refused request), gets exactly one receipt with a place of its own, and
has its job row. Timings are the benchmark's business (bench/bench_queue.py --burst 100), not this test's.
"""

from __future__ import annotations

import asyncio

from models import JobStatus
from tests.discord_fake import FakeDiscord
from tests.e2e.conftest import RunningBot, bot_settings
from tests.e2e.test_generation import imagine, job_id_of, job_row, receipt_complete, wait_for_status
from tests.postgres import both_engines

pytestmark = both_engines
STUDENTS = 100
QUICK = {"prompt": "a lighthouse in a storm", "size": 32, "steps": 2, "cutn": 2}


async def test_a_hundred_at_once_each_get_one_receipt_with_their_own_place(fake: FakeDiscord, tmp_path, database_url):
    running = RunningBot(bot_settings(fake, tmp_path, database_url=database_url, keyframes=0))
    bot = await running.start()
    try:
        busy = await imagine(fake, fake.add_member("busy"), "the teacher's demo --cutn 2", steps=5000, size=32)
        await wait_for_status(fake, bot, job_id_of(busy), JobStatus.RUNNING)  # the places stay still meanwhile
        students = [fake.add_member(f"student{index}") for index in range(STUDENTS)]
        interactions = await asyncio.gather(*(fake.send_command(student, "imagine", QUICK) for student in students))
        await fake.wait_until(lambda: all(receipt_complete(i) for i in interactions), timeout=120)
        await asyncio.sleep(0.5)  # a second answer would arrive now

        assert all(len(i.responses) == 1 and len(i.followups) == 1 for i in interactions)  # nobody answered twice
        jobs = [await job_row(bot, job_id_of(i)) for i in interactions]
        assert all(job is not None and job.status == JobStatus.QUEUED for job in jobs)
        assert len({job.id for job in jobs}) == STUDENTS
        told = [int(i.original.content.split("position ")[1].split(",")[0]) for i in interactions]
        assert sorted(told) == list(range(1, STUDENTS + 1))  # each a place of its own
        now = await bot.jobs.queue_places()
        assert told == [now[job.id].position for job in jobs]  # and it is still right: newcomers queue behind
        assert all("Watch it learn in <#" in i.original.content for i in interactions)  # each got its thread
    finally:
        await running.stop()
