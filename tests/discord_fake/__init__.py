"""A protocol-level fake Discord: a local REST API and gateway that the real discord.py client talks to."""

from .fake import FakeDiscord
from .models import (
    FakeAttachment,
    FakeInteraction,
    FakeMessage,
    FakeThread,
    FakeUser,
    InteractionCallback,
    RecordedRequest,
)

__all__ = [
    "FakeAttachment",
    "FakeDiscord",
    "FakeInteraction",
    "FakeMessage",
    "FakeThread",
    "FakeUser",
    "InteractionCallback",
    "RecordedRequest",
]
