"""One read shared by everyone who asks for it at the same moment."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Result = TypeVar("Result")


class Coalesced(Generic[Result]):
    """Calls `read` on behalf of many callers: each gets a result read after it asked, and callers who ask
    while a read is under way share the next one. So when a hundred people queue a job in the same second,
    the whole queue is read a handful of times instead of a hundred, and every receipt still counts the
    asker's own job."""

    def __init__(self, read: Callable[[], Awaitable[Result]]) -> None:
        self._read = read
        self._running: asyncio.Future[Result] | None = None
        self._next: asyncio.Future[Result] | None = None  # the read that starts when the running one ends

    async def __call__(self) -> Result:
        if self._next is None:
            self._next = asyncio.ensure_future(self._read_after(self._running))
        return await asyncio.shield(self._next)

    async def _read_after(self, running: asyncio.Future[Result] | None) -> Result:
        if running is not None:
            await asyncio.wait({running})  # its result may predate our callers: wait, then read afresh
        self._running, self._next = self._next, None  # callers from now on wait for the read after this one
        try:
            return await self._read()
        finally:
            if self._running is asyncio.current_task():
                self._running = None
