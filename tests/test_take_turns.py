"""bot.db.take_turns: transactions that take turns on one name run one at a time (PostgreSQL's advisory lock)."""

import asyncio

import pytest

from bot.db import take_turns
from tests.postgres import both_engines

pytestmark = both_engines


async def test_transactions_on_one_name_wait_for_each_other_and_others_do_not(sessions, engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite: a transaction's first write already holds the database's one write lock")

    async def take(name: str) -> None:
        async with sessions.begin() as session:
            await take_turns(session, name)

    async with sessions.begin() as first:
        await take_turns(first, "challenge-create:1")
        same = asyncio.create_task(take("challenge-create:1"))
        await asyncio.wait_for(take("challenge-create:2"), 5)  # another guild's creators do not wait
        await asyncio.sleep(0.3)
        assert not same.done()  # it waits for the first transaction to end
    await asyncio.wait_for(same, 5)
