"""Coalesced reads: shared by callers who ask at the same moment, never older than the asking."""

from __future__ import annotations

import asyncio

import pytest

from bot.coalesce import Coalesced


class SlowCounter:
    """A read that takes a while and says how many reads began before it: a stand-in for reading the queue."""

    def __init__(self) -> None:
        self.reads = 0
        self.release = asyncio.Event()
        self.fail = False
        self.under_way = 0
        self.most_at_once = 0

    async def read(self) -> int:
        self.reads += 1
        number = self.reads
        self.under_way += 1
        self.most_at_once = max(self.most_at_once, self.under_way)
        try:
            await self.release.wait()
            if self.fail:
                raise RuntimeError("the database went away")
            return number
        finally:
            self.under_way -= 1


async def test_callers_asking_together_share_one_read():
    counter = SlowCounter()
    shared = Coalesced(counter.read)
    callers = [asyncio.create_task(shared()) for _ in range(50)]
    await asyncio.sleep(0)
    counter.release.set()
    assert await asyncio.gather(*callers) == [1] * 50
    assert counter.reads == 1


async def test_a_caller_arriving_during_a_read_gets_the_next_one():
    counter = SlowCounter()
    shared = Coalesced(counter.read)
    early = asyncio.create_task(shared())
    await asyncio.sleep(0)  # the first read is under way: it may not see what the late callers just stored
    late = [asyncio.create_task(shared()) for _ in range(20)]
    await asyncio.sleep(0)
    counter.release.set()
    assert await early == 1
    assert await asyncio.gather(*late) == [2] * 20  # one more read, after they asked, for all of them
    assert counter.reads == 2 and counter.most_at_once == 1  # the second read waited for the first
    assert await shared() == 3  # nothing is kept: a later caller reads afresh


async def test_a_failed_read_fails_its_callers_and_the_next_call_reads_again():
    counter = SlowCounter()
    shared = Coalesced(counter.read)
    counter.fail = True
    callers = [asyncio.create_task(shared()) for _ in range(3)]
    await asyncio.sleep(0)
    counter.release.set()
    for outcome in await asyncio.gather(*callers, return_exceptions=True):
        assert isinstance(outcome, RuntimeError)
    counter.fail = False
    assert await shared() == 2


async def test_a_cancelled_caller_does_not_cancel_the_read_others_wait_for():
    counter = SlowCounter()
    shared = Coalesced(counter.read)
    impatient, patient = asyncio.create_task(shared()), asyncio.create_task(shared())
    await asyncio.sleep(0)
    impatient.cancel()
    counter.release.set()
    assert await patient == 1
    with pytest.raises(asyncio.CancelledError):
        await impatient
