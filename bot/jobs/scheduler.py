"""Which queued job runs next: the host lane first, then round-robin across people.

Pure functions over plain data, so fairness is easy to test and to reason about.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class QueuedJob:
    id: int
    user_id: int
    host_lane: bool
    created_at: datetime
    estimated_seconds: float = 0.0


def fair_order(queued: Sequence[QueuedJob], last_started: Mapping[int, datetime]) -> list[QueuedJob]:
    """The order in which the worker will run the queued jobs.

    Host-lane jobs go first, oldest first. The rest go in rounds: each round takes one job
    (their oldest) from every person with jobs waiting, so one person's ten jobs never hold back
    everyone else. Within a round, people whose last job started longest ago (or never) go first.
    """
    host_jobs = sorted((job for job in queued if job.host_lane), key=lambda job: (job.created_at, job.id))
    jobs_by_user: dict[int, list[QueuedJob]] = defaultdict(list)
    for job in sorted((job for job in queued if not job.host_lane), key=lambda job: (job.created_at, job.id)):
        jobs_by_user[job.user_id].append(job)

    def turn(user_id: int) -> tuple[bool, datetime, int]:
        started = last_started.get(user_id)
        oldest = jobs_by_user[user_id][0]
        # Never served sorts first (False < True); then the longest wait since the last start.
        return (started is not None, started or oldest.created_at, oldest.id)

    users = sorted(jobs_by_user, key=turn)
    rounds = max((len(jobs) for jobs in jobs_by_user.values()), default=0)
    ordered = list(host_jobs)
    for round_index in range(rounds):
        ordered.extend(jobs_by_user[user][round_index] for user in users if round_index < len(jobs_by_user[user]))
    return ordered


def estimated_waits(ordered: Sequence[QueuedJob], running_seconds_left: float) -> dict[int, float]:
    """Seconds until each job in `ordered` starts, given how long the running job still needs."""
    waits: dict[int, float] = {}
    elapsed = running_seconds_left
    for job in ordered:
        waits[job.id] = elapsed
        elapsed += job.estimated_seconds
    return waits
