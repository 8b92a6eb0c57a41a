"""The fake's gateway websocket: HELLO, IDENTIFY/RESUME, heartbeats, and dispatching events to the bot.

discord.py asks for `compress=zlib-stream` (or zstd-stream when a zstd module is importable) but also
accepts plain text frames, so the fake answers zlib-stream in kind and everything else as text.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import Callable

from aiohttp import WSMsgType, web

DISPATCH, HEARTBEAT, IDENTIFY, RESUME, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 0, 1, 2, 6, 9, 10, 11
REQUEST_GUILD_MEMBERS = 8
CLOSE_AUTHENTICATION_FAILED = 4004
HEARTBEAT_INTERVAL_MS = 41250


class GatewaySession:
    """One websocket connection. Frames go out through a queue so dispatches keep their order."""

    def __init__(self, socket: web.WebSocketResponse, compress: str | None) -> None:
        self.socket = socket
        self.session_id: str | None = None
        self.sequence = 0
        self.ready = False
        self._outgoing: asyncio.Queue[dict] = asyncio.Queue()
        self._zlib = zlib.compressobj() if compress == "zlib-stream" else None

    def send(self, op: int, data: object, event: str | None = None) -> None:
        frame: dict = {"op": op, "d": data, "s": None, "t": event}
        if op == DISPATCH:
            self.sequence += 1
            frame["s"] = self.sequence
        self._outgoing.put_nowait(frame)

    async def flush(self) -> None:
        """Wait until every queued frame has been written to the socket."""
        await self._outgoing.join()

    async def write_frames(self) -> None:
        while True:
            frame = await self._outgoing.get()
            try:
                text = json.dumps(frame)
                if self._zlib is None:
                    await self.socket.send_str(text)
                else:
                    await self.socket.send_bytes(
                        self._zlib.compress(text.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
                    )
            except ConnectionError:
                pass  # the bot went away; the reader notices and ends the session
            finally:
                self._outgoing.task_done()


class Gateway:
    """Accepts websocket connections at /gateway and keeps the identified sessions.

    `ready_events(session_id)` gives the (event, data) pairs sent after a good IDENTIFY (READY, GUILD_CREATE);
    `member_chunk(request)` answers a REQUEST_GUILD_MEMBERS with GUILD_MEMBERS_CHUNK data.
    """

    def __init__(
        self,
        token: str,
        ready_events: Callable[[str], list[tuple[str, dict]]],
        member_chunk: Callable[[dict], dict],
    ) -> None:
        self._token = token
        self._ready_events = ready_events
        self._member_chunk = member_chunk
        self._sessions: list[GatewaySession] = []
        self._known_session_ids: set[str] = set()
        self._session_counter = 0
        self.handshakes: list[str] = []  # "identify" or "resume", in order, for tests of reconnects

    @property
    def connected(self) -> bool:
        return any(session.ready for session in self._sessions)

    def dispatch(self, event: str, data: dict) -> None:
        for session in self._sessions:
            if session.ready:
                session.send(DISPATCH, data, event)

    async def flush(self) -> None:
        for session in list(self._sessions):
            await session.flush()

    async def close_all(self, code: int = 1001) -> None:
        for session in list(self._sessions):
            await session.socket.close(code=code)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        session = GatewaySession(socket, request.query.get("compress"))
        writer = asyncio.create_task(session.write_frames())
        self._sessions.append(session)
        try:
            session.send(HELLO, {"heartbeat_interval": HEARTBEAT_INTERVAL_MS})
            async for message in socket:
                if message.type is not WSMsgType.TEXT:
                    break
                await self._handle_frame(session, json.loads(message.data))
        finally:
            self._sessions.remove(session)
            writer.cancel()
        return socket

    async def _handle_frame(self, session: GatewaySession, frame: dict) -> None:
        op, data = frame.get("op"), frame.get("d")
        if op == HEARTBEAT:
            session.send(HEARTBEAT_ACK, None)
        elif op == IDENTIFY:
            if data.get("token") != self._token:
                await session.flush()
                await session.socket.close(
                    code=CLOSE_AUTHENTICATION_FAILED, message=b"Authentication failed."
                )
                return
            self._session_counter += 1
            session.session_id = f"fake-session-{self._session_counter}"
            self._known_session_ids.add(session.session_id)
            session.ready = True
            self.handshakes.append("identify")
            for event, event_data in self._ready_events(session.session_id):
                if event == "READY" and "shard" in data:
                    event_data = {**event_data, "shard": data["shard"]}
                session.send(DISPATCH, event_data, event)
        elif op == RESUME:
            if data.get("token") != self._token or data.get("session_id") not in self._known_session_ids:
                session.send(INVALID_SESSION, False)
                return
            session.session_id = data["session_id"]
            session.sequence = data.get("seq") or 0
            session.ready = True
            self.handshakes.append("resume")
            session.send(DISPATCH, {}, "RESUMED")
        elif op == REQUEST_GUILD_MEMBERS:
            session.send(DISPATCH, self._member_chunk(data), "GUILD_MEMBERS_CHUNK")
