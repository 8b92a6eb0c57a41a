"""Alembic's environment: async, batch mode for SQLite, URL from Easel's settings.

The bot and the tests pass an open connection in `config.attributes["connection"]`; the
`alembic` command line gets its URL from the settings (DATABASE_URL or DATA_DIR).
"""

import asyncio

from alembic import context
from sqlalchemy import Connection

import models
from bot.db import create_engine
from bot.settings import Settings

target_metadata = models.Base.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_from_settings() -> None:
    engine = create_engine(Settings().resolved_database_url)
    async with engine.begin() as connection:
        await connection.run_sync(run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Easel's migrations run online only: use `python -m bot db upgrade`.")

given_connection = context.config.attributes.get("connection")
if given_connection is not None:
    run_migrations(given_connection)
else:
    asyncio.run(run_migrations_from_settings())
