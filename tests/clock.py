"""A clock that moves only when a test (or a benchmark) says so, for code that takes `clock=`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

SATURDAY_NOON = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = SATURDAY_NOON) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
