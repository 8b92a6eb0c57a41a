import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

import models
from bot import db
from tests.postgres import both_engines

pytestmark = both_engines


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
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's pragmas")
    async with engine.connect() as connection:
        journal = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
        foreign_keys = (await connection.execute(text("PRAGMA foreign_keys"))).scalar()
        busy = (await connection.execute(text("PRAGMA busy_timeout"))).scalar()
    assert (journal, foreign_keys, busy) == ("wal", 1, db.SQLITE_BUSY_TIMEOUT_MS)


async def test_a_deleted_job_or_submission_id_is_never_given_again(sessions):
    """Buttons, result folders, submission files and `job:123` name rows by id: SQLite must not reuse one."""
    from sqlalchemy import delete

    from models import Exercise, Job, Lesson, Submission

    async with sessions.begin() as session:
        session.add(Lesson(id=1, slug="l", number=1, title="t", summary="s", body="b", links={}, content_hash="h"))
        await session.flush()
        session.add(Exercise(id="e", lesson_id=1, position=0, title="t", brief="b", technique="cppn", preset={},
                             images={}, submit_hint="s"))
    for model, values in ((Job, {"channel_id": 1, "user_id": 1, "technique": "cppn", "spec": {}, "seed": 1,
                                 "title": "t"}),
                          (Submission, {"guild_id": 1, "user_id": 1, "exercise_id": "e"})):
        async with sessions.begin() as session:
            first = model(**values)
            session.add(first)
        async with sessions.begin() as session:
            await session.execute(delete(model).where(model.id == first.id))
        async with sessions.begin() as session:
            second = model(**values)
            session.add(second)
        assert second.id > first.id, model.__name__
