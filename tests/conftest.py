"""Shared fixtures: a real database made by the migrations (a SQLite file, or PostgreSQL for the tests
marked `both_engines`), and settings pointing into tmp_path."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

os.environ["HF_HUB_OFFLINE"] = "1"

from bot import db
from tests.postgres import ENGINES, PostgresMissing, ThrowawayCluster


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("both_engines") and "database_url" in metafunc.fixturenames:
        metafunc.parametrize("database_url", ENGINES, indirect=True)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[ThrowawayCluster | PostgresMissing]:
    """One throwaway cluster for the whole session, started on first use (or why it could not be)."""
    try:
        cluster = ThrowawayCluster()
        cluster.start()
    except PostgresMissing as missing:
        yield missing
        return
    yield cluster
    cluster.stop()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQLite file in tmp_path; a fresh PostgreSQL database when parametrized with "postgresql"."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'easel.db'}"
    cluster = request.getfixturevalue("postgres_cluster")
    if isinstance(cluster, PostgresMissing):
        pytest.skip(f"PostgreSQL tests skipped: {cluster}")
    return cluster.create_database()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(database_url)
    await db.upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return db.create_session_factory(engine)
