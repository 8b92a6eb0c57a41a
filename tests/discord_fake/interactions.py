"""Interactions on the fake: their responses (callbacks), followups and webhook edits, with Discord's deadlines.

- The first response must come within 3 s of the event (else 404 code 10062 "Unknown interaction").
- The token works for webhook followups and edits for 15 minutes (else 401 code 50027).
- One response only (else 400 code 40060); a modal cannot answer a modal submit; autocomplete is answered
  with type 8 and nothing else.
"""

from __future__ import annotations

import secrets

from . import limits
from .models import (
    EPHEMERAL,
    LOADING,
    DiscordError,
    FakeAttachment,
    FakeInteraction,
    FakeMessage,
    FakeUser,
    InteractionCallback,
)
from .state import GuildState

APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 2, 3, 4, 5
MESSAGE, DEFERRED, DEFERRED_UPDATE, UPDATE, AUTOCOMPLETE_RESULT, MODAL = 4, 5, 6, 7, 8, 9
RESPONSE_DEADLINE = 3.0
TOKEN_LIFETIME = 15 * 60.0

UNKNOWN_MESSAGE = 10008
UNKNOWN_WEBHOOK = 10015
UNKNOWN_INTERACTION = 10062
ALREADY_ACKNOWLEDGED = 40060
INVALID_WEBHOOK_TOKEN = 50027


def _invalid_response_type(reason: str) -> DiscordError:
    errors = {"type": {"_errors": [{"code": "INTERACTION_RESPONSE_TYPE_INVALID", "message": reason}]}}
    return DiscordError(
        400, limits.INVALID_FORM_BODY, "Invalid Form Body", errors=errors, bot_fault=True, reason=reason
    )


class InteractionState(GuildState):
    def __init__(self) -> None:
        super().__init__()
        self.interactions: dict[int, FakeInteraction] = {}

    def register_interaction(
        self, kind: int, user: FakeUser, channel_id: int, source_message: FakeMessage | None = None
    ) -> FakeInteraction:
        interaction = FakeInteraction(
            id=self.new_id(),
            token=f"interaction.{secrets.token_urlsafe(32)}",
            type=kind,
            user=user,
            channel_id=channel_id,
            payload={},
            source_message=source_message,
        )
        self.interactions[interaction.id] = interaction
        return interaction

    def interaction_for_callback(self, interaction_id: int, token: str) -> FakeInteraction:
        interaction = self.interactions.get(interaction_id)
        if interaction is None or interaction.token != token:
            raise DiscordError(404, UNKNOWN_INTERACTION, "Unknown interaction", bot_fault=True)
        age = self.now() - interaction.dispatched_at
        if not interaction.responses and age > RESPONSE_DEADLINE:
            raise DiscordError(
                404,
                UNKNOWN_INTERACTION,
                "Unknown interaction",
                bot_fault=True,
                reason=f"first response {age:.2f} s after the event; Discord allows {RESPONSE_DEADLINE:g} s",
            )
        return interaction

    def interaction_for_webhook(self, application_id: int, token: str) -> FakeInteraction:
        interaction = next(
            (i for i in self.interactions.values() if i.token == token and application_id == self.application_id),
            None,
        )
        if interaction is None:
            raise DiscordError(404, UNKNOWN_WEBHOOK, "Unknown Webhook", bot_fault=True)
        age = self.now() - interaction.dispatched_at
        if age > TOKEN_LIFETIME:
            raise DiscordError(
                401,
                INVALID_WEBHOOK_TOKEN,
                "Invalid Webhook Token",
                bot_fault=True,
                reason=f"interaction token used {age / 60:.1f} min after the event; it lives 15 min",
            )
        return interaction

    def respond(self, interaction: FakeInteraction, body: dict, files: list[FakeAttachment]) -> dict:
        """The initial response (callback). Returns what Discord returns for `?with_response=true`."""
        if interaction.responses:
            raise DiscordError(
                400, ALREADY_ACKNOWLEDGED, "Interaction has already been acknowledged.", bot_fault=True
            )
        kind, data = body.get("type"), body.get("data") or {}
        self._check_response(interaction, kind, data, files)
        interaction.responses.append(InteractionCallback(kind, data, files, self.now()))

        if kind == MESSAGE:
            interaction.original = self._interaction_message(interaction, data, files)
        elif kind == DEFERRED:
            loading = {"flags": LOADING | (data.get("flags", 0) & EPHEMERAL)}
            interaction.original = self._interaction_message(interaction, loading, [])
        elif kind in (DEFERRED_UPDATE, UPDATE):
            interaction.original = interaction.source_message
            if kind == UPDATE:
                self.edit_message(interaction.source_message, data, files)

        message = interaction.original
        reply: dict = {
            "interaction": {
                "id": str(interaction.id),
                "type": interaction.type,
                "response_message_id": str(message.id) if message else None,
                "response_message_loading": kind == DEFERRED,
                "response_message_ephemeral": bool(message and message.ephemeral),
            },
            "resource": {"type": kind},
        }
        if kind in (MESSAGE, UPDATE):
            reply["resource"]["message"] = self.render_message(message)
        return reply

    def _check_response(self, interaction: FakeInteraction, kind: int, data: dict, files: list[FakeAttachment]) -> None:
        if (interaction.type == AUTOCOMPLETE) != (kind == AUTOCOMPLETE_RESULT):
            raise _invalid_response_type("autocomplete is answered with type 8, and only autocomplete is")
        if kind in (DEFERRED_UPDATE, UPDATE) and interaction.source_message is None:
            raise _invalid_response_type("types 6 and 7 only answer interactions on a message")
        if kind == MODAL and interaction.type == MODAL_SUBMIT:
            raise _invalid_response_type("a modal cannot answer a modal submit")
        if kind in (MESSAGE, UPDATE):
            kept = len(interaction.source_message.attachments) if kind == UPDATE and "attachments" not in data else 0
            limits.check_message(
                data,
                files,
                upload_limit=self.upload_limit(interaction.channel_id),
                prefix=("data",),
                kept_attachments=kept,
                creating=kind == MESSAGE,
            )
        elif kind == MODAL:
            limits.check_modal(data)
        elif kind == AUTOCOMPLETE_RESULT:
            limits.check_autocomplete(data)

    def followup(self, interaction: FakeInteraction, body: dict, files: list[FakeAttachment]) -> FakeMessage:
        """A webhook followup. As on Discord, the first one after a defer fills in the "thinking" message."""
        if not interaction.responses:
            raise DiscordError(404, UNKNOWN_WEBHOOK, "Unknown Webhook", bot_fault=True)
        original = interaction.original
        if original is not None and original.flags & LOADING:
            limits.check_message(body, files, upload_limit=self.upload_limit(interaction.channel_id))
            filled = {**body, "flags": original.flags & EPHEMERAL}
            self._apply(original, filled, files)
            if not original.ephemeral:
                self._record_pings(original, filled)
            message = original
        else:
            message = self._interaction_message(interaction, body, files)
        interaction.followups.append(message)
        return message

    def webhook_message(self, interaction: FakeInteraction, message_ref: str) -> FakeMessage:
        """`@original` or the id of one of the interaction's followups."""
        if message_ref == "@original":
            message = interaction.original
        else:
            message = next((m for m in interaction.followups if str(m.id) == message_ref), None)
        if message is None or message.deleted:
            raise DiscordError(404, UNKNOWN_MESSAGE, "Unknown Message", bot_fault=message is None)
        return message

    def edit_webhook_message(self, message: FakeMessage, body: dict, files: list[FakeAttachment]) -> FakeMessage:
        if message.flags & LOADING:
            body = {**body, "flags": message.flags & EPHEMERAL}
        return self.edit_message(message, body, files)

    def _interaction_message(
        self, interaction: FakeInteraction, body: dict, files: list[FakeAttachment]
    ) -> FakeMessage:
        ephemeral = bool((body.get("flags") or 0) & EPHEMERAL)
        return self.create_message(
            interaction.channel_id, body, files, webhook_id=self.application_id, visible=not ephemeral
        )
