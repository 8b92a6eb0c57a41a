from datetime import timedelta

import pytest

from bot.guilds import GuildService
from bot.jobs.repository import MAX_ATTEMPTS, IllegalTransition, JobRepository
from models import Job, JobStatus
from tests.postgres import both_engines

pytestmark = both_engines
WORKER, LEASE = "worker-a", timedelta(seconds=30)


def new_job(user_id: int = 1, guild_id: int = 10, **fields) -> Job:
    defaults = {"technique": "cppn", "spec": {"technique": "cppn", "seed": 1, "config": {}}}
    return Job(guild_id=guild_id, channel_id=20, user_id=user_id, title="t", seed=1, total_steps=10,
               **(defaults | fields))


async def test_only_legal_transitions_happen(sessions):
    repository = JobRepository(sessions)
    job = await repository.add(new_job())
    running = await repository.transition(job.id, JobStatus.QUEUED, JobStatus.RUNNING)
    assert running.status == JobStatus.RUNNING
    done = await repository.transition(job.id, JobStatus.RUNNING, JobStatus.DONE)
    assert done.finished_at is not None and done.finished_at.tzinfo is not None

    with pytest.raises(IllegalTransition, match="not allowed"):
        await repository.transition(job.id, JobStatus.DONE, JobStatus.RUNNING)
    with pytest.raises(IllegalTransition, match="is done, not queued"):
        await repository.transition(job.id, JobStatus.QUEUED, JobStatus.CANCELLED)
    assert (await repository.get(job.id)).status == JobStatus.DONE


async def test_claims_take_turns_between_guilds_and_dms_and_a_host_jumps_only_their_own_guild(sessions):
    repository = JobRepository(sessions)
    busy = [await repository.add(new_job(user_id=user, guild_id=10)) for user in (1, 2, 3)]
    quiet = await repository.add(new_job(user_id=4, guild_id=20))
    direct = await repository.add(new_job(user_id=5, guild_id=None))
    host = await repository.add(new_job(user_id=6, guild_id=20, host_lane=True))

    claimed = []
    while (job := await repository.claim_next(WORKER, LEASE)) is not None:
        claimed.append(job.id)
        await repository.transition(job.id, JobStatus.RUNNING, JobStatus.DONE)
    # Round one: guild 10's oldest, guild 20's host, the DM; then guild 10 waits behind guild 20's member.
    assert claimed == [busy[0].id, host.id, direct.id, busy[1].id, quiet.id, busy[2].id]


async def test_claim_next_is_fair_and_skips_paused_guilds(sessions):
    repository = JobRepository(sessions)
    a1, a2 = await repository.add(new_job(user_id=1)), await repository.add(new_job(user_id=1))
    b1 = await repository.add(new_job(user_id=2))
    paused = await repository.add(new_job(user_id=3, guild_id=99))
    await GuildService(sessions).update(99, queue_paused=True)

    claimed = [await repository.claim_next(WORKER, LEASE) for _ in range(3)]
    assert [job.id for job in claimed] == [a1.id, b1.id, a2.id]
    assert all(job.status == JobStatus.RUNNING and job.attempts == 1 for job in claimed)
    assert await repository.claim_next(WORKER, LEASE) is None
    assert (await repository.get(paused.id)).status == JobStatus.QUEUED

    await GuildService(sessions).update(99, queue_paused=False)
    assert (await repository.claim_next(WORKER, LEASE)).id == paused.id


async def test_start_up_requeues_interrupted_jobs_and_fails_them_after_a_second_crash(sessions):
    repository = JobRepository(sessions)
    once = await repository.add(new_job())
    twice = await repository.add(new_job())
    await repository.transition(once.id, JobStatus.QUEUED, JobStatus.RUNNING, attempts=1)
    await repository.transition(twice.id, JobStatus.QUEUED, JobStatus.RUNNING, attempts=MAX_ATTEMPTS)

    requeued, failed, cancelled = await repository.recover_interrupted(only_expired=False)
    assert cancelled == []
    assert [job.id for job in requeued] == [once.id] and requeued[0].status == JobStatus.QUEUED
    assert [job.id for job in failed] == [twice.id] and "stopped twice" in failed[0].error


async def test_message_ids_are_recorded_and_only_view_fields_accepted(sessions):
    repository = JobRepository(sessions)
    job = await repository.add(new_job())
    await repository.update_views(job.id, thread_id=5, status_message_id=6, final_message_id=7)
    stored = await repository.get(job.id)
    assert (stored.thread_id, stored.status_message_id, stored.final_message_id) == (5, 6, 7)
    with pytest.raises(ValueError, match="not a view field"):
        await repository.update_views(job.id, status="done")
