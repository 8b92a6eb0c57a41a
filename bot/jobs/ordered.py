"""Updates shown per job in the order they were made, in the background, so one slow post holds up nothing else."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine

log = logging.getLogger(__name__)


class UpdatesInOrder:
    def __init__(self, name: str) -> None:
        self.name = name
        self._latest: dict[int, asyncio.Task[None]] = {}  # per job, its newest update

    def add(self, job_id: int, update: Coroutine[object, object, None]) -> None:
        """Runs `update` after the job's earlier updates. One that fails (Discord down, say) is logged;
        the job row is the truth."""
        previous = self._latest.get(job_id)

        async def after_previous() -> None:
            if previous is not None:
                await asyncio.wait({previous})
            try:
                await update
            except Exception:
                log.exception("could not show job %s's change on Discord", job_id)

        task = asyncio.create_task(after_previous(), name=f"{self.name}-{job_id}")
        self._latest[job_id] = task
        task.add_done_callback(lambda done: self._latest.pop(job_id, None) if self._latest.get(job_id) is done
                               else None)

    async def wait(self, timeout: float) -> None:  # noqa: ASYNC109
        """Waits for the updates under way, at most `timeout` seconds."""
        if self._latest:
            await asyncio.wait(list(self._latest.values()), timeout=timeout)
