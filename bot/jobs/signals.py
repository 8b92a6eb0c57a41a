"""Wake-ups between processes through PostgreSQL's LISTEN/NOTIFY.

A notification sent inside a transaction is delivered when it commits, so a listener never reads
before the row it is told about exists. SQLite has no such thing: there, `notify` does nothing and
the listeners' pollers find the rows a few seconds later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)

JOBS_QUEUED = "easel_jobs_queued"  # a job was queued or a guild's queue resumed: idle workers claim
JOB_EVENTS = "easel_job_events"  # a worker wrote a job event: the bot posts it
RECONNECT_SECONDS = 5.0


async def notify(session: AsyncSession, channel: str) -> None:
    if session.bind.dialect.name == "postgresql":
        await session.execute(select(func.pg_notify(channel, "")))


@contextlib.asynccontextmanager
async def listening(database_url: str, channel: str, on_notify: Callable[[], None]) -> AsyncIterator[None]:
    """Calls `on_notify` (on the event loop) whenever `channel` is notified, while the block runs.

    A lost connection is opened again; `on_notify` is also called then, as notifications may have been
    missed meanwhile. Does nothing on SQLite.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        yield
        return
    task = asyncio.create_task(_listen(url.set(drivername="postgresql"), channel, on_notify),
                               name=f"easel-listen-{channel}")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _listen(url, channel: str, on_notify: Callable[[], None]) -> None:
    import asyncpg  # only PostgreSQL deployments need it

    dsn = url.render_as_string(hide_password=False)
    while True:
        connection = None
        try:
            connection = await asyncpg.connect(dsn)
            lost = asyncio.Event()
            connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
            await connection.add_listener(channel, lambda *_args: on_notify())
            on_notify()
            await lost.wait()
        except (OSError, asyncpg.PostgresError) as error:
            log.warning("listening for %s failed (%s); trying again in %.0f s", channel, error, RECONNECT_SECONDS)
        finally:
            if connection is not None and not connection.is_closed():
                await connection.close()
        await asyncio.sleep(RECONNECT_SECONDS)
