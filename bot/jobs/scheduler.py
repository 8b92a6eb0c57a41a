"""Which queued job runs next: round-robin between guilds, then between people within a guild.

Pure functions over plain data, so fairness is easy to test and to reason about.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

DIRECT_MESSAGES = None  # jobs asked for in DMs share one turn, like one more guild
Key = TypeVar("Key")
NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class QueuedJob:
    id: int
    user_id: int
    host_lane: bool
    created_at: datetime
    estimated_seconds: float = 0.0
    guild_id: int | None = DIRECT_MESSAGES


def fair_order(
    queued: Sequence[QueuedJob],
    last_started_by_user: Mapping[int, datetime],
    last_started_by_guild: Mapping[int | None, datetime] | None = None,
) -> list[QueuedJob]:
    """The order in which the worker will run the queued jobs.

    Guilds take turns: each round takes one job from every guild with jobs waiting (DMs count as
    one more guild), so a busy server never holds back a quiet one. Within a guild, its hosts'
    jobs go first (a live demo), then its people take turns the same way. In both rounds, whoever
    was served longest ago (or never) goes first.
    """
    by_guild: dict[int | None, list[QueuedJob]] = defaultdict(list)
    for job in queued:
        by_guild[job.guild_id].append(job)
    guild_queues = {guild: _order_within_guild(jobs, last_started_by_user) for guild, jobs in by_guild.items()}
    return _round_robin(guild_queues, last_started_by_guild or {})


def _order_within_guild(jobs: Sequence[QueuedJob], last_started: Mapping[int, datetime]) -> list[QueuedJob]:
    """A guild's own queue: host-lane jobs first, oldest first; then one job per person per round.

    "Oldest" is the smallest id: ids follow the order in which jobs were stored, while `created_at` is taken
    before the write, so two jobs stored at the same moment can carry it in the other order.
    """
    oldest_first = sorted(jobs, key=lambda job: job.id)
    host_jobs = [job for job in oldest_first if job.host_lane]
    by_user: dict[int, list[QueuedJob]] = defaultdict(list)
    for job in oldest_first:
        if not job.host_lane:
            by_user[job.user_id].append(job)
    return host_jobs + _round_robin(by_user, last_started)


def _round_robin(queues: Mapping[Key, list[QueuedJob]], last_served: Mapping[Key, datetime]) -> list[QueuedJob]:
    """One job from each queue per round; queues served longest ago (or never) first within a round."""

    def turn(key: Key) -> tuple[bool, datetime, int]:
        served = last_served.get(key)
        oldest = min(job.id for job in queues[key])
        # Never served sorts first (False < True), oldest job first; then the longest wait since the last start.
        return (served is not None, served or NEVER, oldest)

    keys = sorted(queues, key=turn)
    rounds = max((len(jobs) for jobs in queues.values()), default=0)
    return [queues[key][index] for index in range(rounds) for key in keys if index < len(queues[key])]


def estimated_waits(ordered: Sequence[QueuedJob], running_seconds_left: float) -> dict[int, float]:
    """Seconds until each job in `ordered` starts, given how long the running job still needs."""
    waits: dict[int, float] = {}
    elapsed = running_seconds_left
    for job in ordered:
        waits[job.id] = elapsed
        elapsed += job.estimated_seconds
    return waits
