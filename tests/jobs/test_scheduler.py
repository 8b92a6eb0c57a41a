from datetime import UTC, datetime, timedelta

from bot.jobs.scheduler import QueuedJob, estimated_waits, fair_order

START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def job(job_id: int, user: int, minute: int, host: bool = False, seconds: float = 10.0) -> QueuedJob:
    return QueuedJob(id=job_id, user_id=user, host_lane=host, created_at=START + timedelta(minutes=minute),
                     estimated_seconds=seconds)


def test_one_persons_many_jobs_do_not_hold_back_the_others():
    queued = [job(1, 100, 0), job(2, 100, 1), job(3, 100, 2), job(4, 100, 3), job(5, 200, 4), job(6, 300, 5)]
    assert [j.id for j in fair_order(queued, {})] == [1, 5, 6, 2, 3, 4]


def test_the_person_served_least_recently_goes_first_within_a_round():
    queued = [job(1, 100, 0), job(2, 200, 1)]
    last_started = {100: START + timedelta(minutes=10), 200: START + timedelta(minutes=5)}
    assert [j.id for j in fair_order(queued, last_started)] == [2, 1]
    assert [j.id for j in fair_order(queued, {100: START})] == [2, 1]  # never served beats served


def test_the_host_lane_goes_first_oldest_first():
    queued = [job(1, 100, 0), job(3, 900, 2, host=True), job(2, 900, 1, host=True)]
    assert [j.id for j in fair_order(queued, {})] == [2, 3, 1]


def test_jobs_stored_at_the_same_moment_run_in_the_order_they_were_stored():
    """`created_at` is taken before the write: of two racing submits, the later-stored one may carry the
    earlier time. The order (and so each receipt's place) follows the ids, which follow the writes."""
    queued = [job(5, 100, 1), job(6, 200, 0), job(7, 300, 0), job(8, 100, 0)]
    assert [j.id for j in fair_order(queued, {})] == [5, 6, 7, 8]


def test_waits_add_up_the_jobs_ahead_and_the_running_one():
    ordered = [job(1, 100, 0, seconds=30), job(2, 200, 1, seconds=60), job(3, 300, 2)]
    assert estimated_waits(ordered, running_seconds_left=15) == {1: 15, 2: 45, 3: 105}


def test_an_empty_queue():
    assert fair_order([], {}) == []


def guild_job(job_id: int, guild: int | None, user: int, minute: int, host: bool = False) -> QueuedJob:
    return QueuedJob(id=job_id, user_id=user, host_lane=host, created_at=START + timedelta(minutes=minute),
                     guild_id=guild)


def test_guilds_take_turns_and_dms_count_as_one_more_guild():
    queued = [guild_job(1, 10, 100, 0), guild_job(2, 10, 101, 1), guild_job(3, 10, 102, 2),
              guild_job(4, 20, 200, 3), guild_job(5, None, 300, 4), guild_job(6, None, 301, 5)]
    assert [j.id for j in fair_order(queued, {})] == [1, 4, 5, 2, 6, 3]


def test_a_hosts_job_goes_first_only_in_its_own_guilds_turn():
    queued = [guild_job(1, 10, 100, 0), guild_job(2, 20, 200, 1), guild_job(3, None, 300, 2),
              guild_job(4, 20, 900, 3, host=True)]
    # Guild 20's host jumps guild 20's own queue, not guild 10's or the DMs'.
    assert [j.id for j in fair_order(queued, {})] == [1, 4, 3, 2]


def test_the_guild_served_least_recently_goes_first():
    queued = [guild_job(1, 10, 100, 0), guild_job(2, 20, 200, 1)]
    served = {10: START + timedelta(minutes=9), 20: START + timedelta(minutes=3)}
    assert [j.id for j in fair_order(queued, {}, served)] == [2, 1]
