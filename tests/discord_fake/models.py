"""What the fake Discord remembers: guilds, users, channels, messages, interactions and every REST request."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

DISCORD_EPOCH_MS = 1420070400000
EPHEMERAL = 1 << 6
LOADING = 1 << 7
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024


class SnowflakeFactory:
    """Hands out unique, increasing Discord ids whose timestamp part is "now"."""

    def __init__(self) -> None:
        self._increment = itertools.count()

    def __call__(self) -> int:
        millis = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return (millis << 22) | (next(self._increment) & 0x3FFFFF)


class DiscordError(Exception):
    """Raised by REST handlers; the server turns it into Discord's JSON error shape.

    `bot_fault` marks refusals that a correct bot never provokes (they are recorded in `fake.violations`);
    refusals a test set up (denied permissions, deleted messages, injected failures) leave it False.
    `errors` is Discord's nested `errors` object of a 400 Invalid Form Body; `extra` adds body fields
    (a 429's `retry_after`) and `headers` response headers; `reason` says why, for the violation record.
    """

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        bot_fault: bool = False,
        errors: dict | None = None,
        extra: dict | None = None,
        headers: dict[str, str] | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.bot_fault = bot_fault
        self.errors = errors
        self.extra = extra or {}
        self.headers = headers or {}
        self.reason = reason or message

    def body(self) -> dict:
        body: dict = {"message": self.message, "code": self.code, **self.extra}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


@dataclass
class Violation:
    """A request the fake refused because the bot broke one of Discord's rules."""

    method: str
    path: str
    status: int
    code: int
    reason: str

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status} (code {self.code}): {self.reason}"


@dataclass
class FakeUser:
    id: int
    name: str
    role_ids: list[int] = field(default_factory=list)
    bot: bool = False


@dataclass
class FakeGuild:
    id: int  # also the id of its @everyone role
    name: str
    owner: FakeUser
    channel_id: int = 0  # its "workshop" text channel
    member_ids: list[int] = field(default_factory=list)
    upload_limit: int = DEFAULT_UPLOAD_LIMIT  # bytes per file


@dataclass
class FakeRole:
    id: int
    name: str
    permissions: int
    position: int
    managed: bool = False
    guild_id: int = 0


@dataclass
class FakeChannel:
    id: int
    name: str
    position: int
    type: int = 0  # GUILD_TEXT; 1 is DM
    guild_id: int | None = None  # None for DMs
    recipient_id: int | None = None  # the other user of a DM


@dataclass
class FakeThread:
    id: int
    parent_id: int
    name: str
    owner_id: int
    starter_message_id: int | None
    type: int = 11  # PUBLIC_THREAD; 12 is PRIVATE_THREAD
    archived: bool = False
    locked: bool = False
    auto_archive_duration: int = 1440
    message_count: int = 0


class FakeAttachment(tuple):
    """A `(filename, bytes)` pair, as tests compare it, that also carries its Discord id and content type."""

    id: int
    content_type: str

    def __new__(cls, filename: str, data: bytes, *, id: int, content_type: str) -> FakeAttachment:
        attachment = super().__new__(cls, (filename, data))
        attachment.id = id
        attachment.content_type = content_type
        return attachment

    @property
    def filename(self) -> str:
        return self[0]

    @property
    def data(self) -> bytes:
        return self[1]


@dataclass
class FakeMessage:
    id: int
    channel_id: int
    author_id: int
    content: str = ""
    embeds: list[dict] = field(default_factory=list)
    components: list[dict] = field(default_factory=list)
    attachments: list[FakeAttachment] = field(default_factory=list)
    flags: int = 0
    message_reference: dict | None = None
    webhook_id: int | None = None
    edits: int = 0
    edit_history: list[dict] = field(default_factory=list)  # snapshots of the message before each edit
    deleted: bool = False
    created_at: float = 0.0  # on the fake's clock; `fake.age_message` moves it back
    # Who the message notified when it was posted; edits never notify anyone new.
    pinged_users: list[int] = field(default_factory=list)
    pinged_roles: list[int] = field(default_factory=list)
    pinged_everyone: bool = False

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    def custom_ids(self) -> list[str]:
        """Custom ids of every component on the message, nested rows included."""
        found: list[str] = []
        stack = list(self.components)
        while stack:
            component = stack.pop(0)
            if "custom_id" in component:
                found.append(component["custom_id"])
            stack.extend(component.get("components", []))
        return found

    def snapshot(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "embeds": self.embeds,
            "components": self.components,
            "attachments": list(self.attachments),
            "flags": self.flags,
        }


@dataclass
class InteractionCallback:
    """One POST to /interactions/{id}/{token}/callback."""

    type: int  # 4 message, 5 deferred, 6 deferred update, 7 update, 8 autocomplete choices, 9 modal
    data: dict
    files: list[FakeAttachment]
    at: float  # on the fake's clock (time.monotonic() plus `fake.advance_clock` offsets)

    @property
    def flags(self) -> int:
        return self.data.get("flags", 0) or 0

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)


@dataclass
class FakeInteraction:
    id: int
    token: str
    type: int  # 2 application command, 3 message component, 4 autocomplete, 5 modal submit
    user: FakeUser
    channel_id: int
    payload: dict  # the INTERACTION_CREATE data sent on the gateway
    source_message: FakeMessage | None = None  # the message a button/modal was used on
    dispatched_at: float = 0.0  # on the fake's clock, just before the event went out
    responses: list[InteractionCallback] = field(default_factory=list)
    followups: list[FakeMessage] = field(default_factory=list)
    original: FakeMessage | None = None

    @property
    def data(self) -> dict:
        return self.payload["data"]


@dataclass
class RecordedRequest:
    method: str
    path: str  # relative to the API base, e.g. "/channels/1/messages"
    query: dict[str, str]
    json: Any
    files: list[FakeAttachment]
    at: float
    status: int = 0
