from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

import models
from bot import db


async def table_names(engine) -> set[str]:
    async with engine.connect() as connection:
        return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))


async def test_upgrade_downgrade_upgrade_on_a_fresh_file(database_url):
    engine = db.create_engine(database_url)
    try:
        await db.upgrade(engine)
        assert await db.current_revision(engine) == db.head_revision()
        assert {"guild_settings", "members", "jobs", "app_state"} <= await table_names(engine)

        await db.downgrade(engine, "base")
        assert await db.current_revision(engine) is None
        assert await table_names(engine) <= {"alembic_version"}

        await db.upgrade(engine)
        assert await db.current_revision(engine) == db.head_revision()
    finally:
        await engine.dispose()


async def test_migrated_schema_matches_the_models(engine):
    async with engine.connect() as connection:
        differences = await connection.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), models.Base.metadata
            )
        )
    assert differences == []


async def test_sqlite_pragmas_are_set_on_every_connection(engine):
    async with engine.connect() as connection:
        journal = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
        foreign_keys = (await connection.execute(text("PRAGMA foreign_keys"))).scalar()
        busy = (await connection.execute(text("PRAGMA busy_timeout"))).scalar()
    assert (journal, foreign_keys, busy) == ("wal", 1, db.SQLITE_BUSY_TIMEOUT_MS)
