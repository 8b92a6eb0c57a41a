"""A protocol-level fake Discord: a local REST API and gateway that the real discord.py client talks to."""

from .fake import FakeDiscord
from .models import (
    FakeAttachment,
    FakeGuild,
    FakeInteraction,
    FakeMessage,
    FakeThread,
    FakeUser,
    InteractionCallback,
    RecordedRequest,
    Violation,
)

__all__ = [
    "FakeAttachment",
    "FakeDiscord",
    "FakeGuild",
    "FakeInteraction",
    "FakeMessage",
    "FakeThread",
    "FakeUser",
    "InteractionCallback",
    "RecordedRequest",
    "Violation",
]
