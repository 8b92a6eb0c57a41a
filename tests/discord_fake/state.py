"""The fake's world: one application, its bot user and one guild, plus what Discord would do to them.

Nothing here knows about HTTP; `rest.py` translates requests into these calls and `DiscordError`s into
Discord's JSON errors. `on_event(name, data)` is how state changes reach the gateway.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from urllib.parse import quote

import discord

from . import payloads
from .models import (
    EPHEMERAL,
    LOADING,
    DiscordError,
    FakeAttachment,
    FakeChannel,
    FakeInteraction,
    FakeMessage,
    FakeRole,
    FakeThread,
    FakeUser,
    InteractionCallback,
    RecordedRequest,
    SnowflakeFactory,
)

EVERYONE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    read_message_history=True,
    embed_links=True,
    attach_files=True,
    add_reactions=True,
    use_application_commands=True,
).value
BOT_PERMISSIONS = EVERYONE_PERMISSIONS | discord.Permissions(manage_messages=True, manage_threads=True).value
ALL_PERMISSIONS = discord.Permissions.all().value
ADMINISTRATOR = discord.Permissions(administrator=True).value

UNKNOWN_CHANNEL = 10003
UNKNOWN_MESSAGE = 10008
UNKNOWN_WEBHOOK = 10015
UNKNOWN_INTERACTION = 10062
INVALID_FORM_BODY = 50035
ALREADY_ACKNOWLEDGED = 40060
THREAD_ALREADY_CREATED = 160004
THREAD_LOCKED = 50083
MISSING_PERMISSIONS = 50013
INVALID_CHANNEL_TYPE = 50024

MESSAGE_FIELDS = ("content", "embeds", "components", "flags", "message_reference")


class GuildState:
    def __init__(self) -> None:
        self.new_id = SnowflakeFactory()
        self.token = f"fake.{secrets.token_urlsafe(24)}"
        self.application_id = self.new_id()
        self.guild_id = self.new_id()
        # Set once the server knows its port.
        self.cdn_base = ""
        self.api_base = ""
        self.gateway_url = ""
        self.on_event: Callable[[str, dict], None] = lambda event, data: None

        self.users: dict[int, FakeUser] = {}
        self.roles: dict[int, FakeRole] = {}
        self.channels: dict[int, FakeChannel] = {}
        self.threads: dict[int, FakeThread] = {}
        self.interactions: dict[int, FakeInteraction] = {}
        self.requests: list[RecordedRequest] = []
        self.unknown_routes: list[RecordedRequest] = []
        self.registration_count = 0
        self._messages: dict[int, FakeMessage] = {}
        self._history: dict[int, list[FakeMessage]] = {}
        self._attachments: dict[int, FakeAttachment] = {}
        self._global_commands: list[dict] = []
        self._guild_commands: dict[int, list[dict]] = {}
        self._thread_failure_code: int | None = None
        self._channels_closed_to_bot: set[int] = set()

        self.roles[self.guild_id] = FakeRole(self.guild_id, "@everyone", EVERYONE_PERMISSIONS, position=0)
        bot_role = self.add_role("Easel", BOT_PERMISSIONS, managed=True)
        self.bot_user = self._add_user("Easel", bot=True, role_ids=[bot_role])
        self.bot_user_id = self.bot_user.id
        self.owner = self._add_user("owner")
        self.channel_id = self.add_channel("workshop")

    # -- guild setup used by tests -------------------------------------------------------------------

    def add_role(self, name: str, permissions: int = 0, *, managed: bool = False) -> int:
        role = FakeRole(self.new_id(), name, permissions, position=len(self.roles), managed=managed)
        self.roles[role.id] = role
        self.on_event(
            "GUILD_ROLE_CREATE", {"guild_id": str(self.guild_id), "role": payloads.role_payload(role)}
        )
        return role.id

    def add_member(self, name: str, *, permissions: int = 0, roles: list[int] = ()) -> FakeUser:
        """A guild member. `permissions` is granted through a role of its own, as Discord would have it."""
        role_ids = list(roles)
        if permissions:
            role_ids.append(self.add_role(f"{name}'s permissions", permissions))
        return self._add_user(name, role_ids=role_ids)

    def add_channel(self, name: str) -> int:
        channel = FakeChannel(self.new_id(), name, position=len(self.channels))
        self.channels[channel.id] = channel
        self._history[channel.id] = []
        self.on_event("CHANNEL_CREATE", payloads.channel_payload(channel, self.guild_id))
        return channel.id

    def _add_user(self, name: str, *, bot: bool = False, role_ids: list[int] | None = None) -> FakeUser:
        user = FakeUser(self.new_id(), name, role_ids or [], bot=bot)
        self.users[user.id] = user
        return user

    def member_permissions(self, user: FakeUser) -> int:
        """Guild permissions: @everyone's plus the member's roles'; administrators and the owner get all."""
        value = self.roles[self.guild_id].permissions
        for role_id in user.role_ids:
            value |= self.roles[role_id].permissions
        if value & ADMINISTRATOR or user.id == self.owner.id:
            return ALL_PERMISSIONS
        return value

    def guild_payload(self) -> dict:
        return payloads.guild_payload(
            guild_id=self.guild_id,
            name="Easel Test Guild",
            owner_id=self.owner.id,
            roles=list(self.roles.values()),
            channels=list(self.channels.values()),
            threads=list(self.threads.values()),
            members=list(self.users.values()),
        )

    # -- reading what the bot did --------------------------------------------------------------------

    def messages(self, channel_id: int) -> list[FakeMessage]:
        """Messages visible in a channel or thread, oldest first (ephemeral ones are never here)."""
        return [message for message in self._history.get(channel_id, []) if not message.deleted]

    def get_message(self, message_id: int) -> FakeMessage:
        message = self._messages.get(message_id)
        if message is None or message.deleted:
            raise DiscordError(404, UNKNOWN_MESSAGE, "Unknown Message")
        return message

    def registered_commands(self, guild_id: int | None = None) -> list[dict]:
        """Global commands, or the commands registered for `guild_id`."""
        if guild_id is None:
            return list(self._global_commands)
        return list(self._guild_commands.get(guild_id, []))

    def deny_bot_posting(self, channel_id: int, denied: bool = True) -> None:
        """The bot's own messages in this channel answer 403 Missing Permissions, as without Send Messages;
        `denied=False` gives the permission back."""
        if denied:
            self._channels_closed_to_bot.add(channel_id)
        else:
            self._channels_closed_to_bot.discard(channel_id)

    def fail_thread_creation(self, code: int | None = 160006) -> None:
        """Make every later thread creation fail with this Discord error code; None restores success."""
        self._thread_failure_code = code

    # -- application commands ------------------------------------------------------------------------

    def overwrite_commands(self, guild_id: int | None, commands: list[dict]) -> list[dict]:
        """Bulk overwrite (PUT). Like Discord, a command keeps its id when its name and type stay the same."""
        self.registration_count += 1
        stored = [self._stored_command(guild_id, command) for command in commands]
        if guild_id is None:
            self._global_commands = stored
        else:
            self._guild_commands[guild_id] = stored
        return stored

    def upsert_command(self, guild_id: int | None, command: dict) -> dict:
        self.registration_count += 1
        stored = self._stored_command(guild_id, command)
        existing = self.registered_commands(guild_id)
        updated = [c for c in existing if c["id"] != stored["id"]] + [stored]
        if guild_id is None:
            self._global_commands = updated
        else:
            self._guild_commands[guild_id] = updated
        return stored

    def _stored_command(self, guild_id: int | None, command: dict) -> dict:
        command_type = command.get("type", 1)
        previous = next(
            (
                c
                for c in self.registered_commands(guild_id)
                if c["name"] == command["name"] and c["type"] == command_type
            ),
            None,
        )
        stored = {
            "description": "",
            "options": [],
            "default_member_permissions": None,
            "nsfw": False,
            **command,
            "id": previous["id"] if previous else str(self.new_id()),
            "application_id": str(self.application_id),
            "type": command_type,
            "version": str(self.new_id()),
        }
        if guild_id is not None:
            stored["guild_id"] = str(guild_id)
        return stored

    def find_command(self, name: str) -> dict:
        """A chat-input command by name, preferring the fake guild's own over global ones."""
        for command in self.registered_commands(self.guild_id) + self.registered_commands():
            if command["name"] == name and command["type"] == 1:
                return command
        names = [c["name"] for c in self.registered_commands(self.guild_id) + self.registered_commands()]
        raise LookupError(f"/{name} is not registered; registered commands: {names}")

    # -- channels and threads ------------------------------------------------------------------------

    def channel_payload(self, channel_id: int) -> dict:
        if channel_id in self.channels:
            return payloads.channel_payload(self.channels[channel_id], self.guild_id)
        if channel_id in self.threads:
            return payloads.thread_payload(self.threads[channel_id], self.guild_id)
        raise DiscordError(404, UNKNOWN_CHANNEL, "Unknown Channel")

    def create_thread(
        self,
        parent_id: int,
        body: dict,
        *,
        starter_message_id: int | None = None,
        owner: FakeUser | None = None,
    ) -> FakeThread:
        if parent_id not in self.channels:
            if parent_id in self.threads:
                raise DiscordError(400, INVALID_CHANNEL_TYPE, "Cannot execute action on this channel type")
            raise DiscordError(404, UNKNOWN_CHANNEL, "Unknown Channel")
        if self._thread_failure_code is not None:
            raise DiscordError(
                400, self._thread_failure_code, "Thread creation failed (simulated by the fake)"
            )
        if starter_message_id is not None and starter_message_id in self.threads:
            raise DiscordError(
                400, THREAD_ALREADY_CREATED, "A thread has already been created for this message"
            )
        thread = FakeThread(
            id=starter_message_id or self.new_id(),
            parent_id=parent_id,
            name=body["name"],
            owner_id=(owner or self.bot_user).id,
            starter_message_id=starter_message_id,
            type=body.get("type", 11),
            auto_archive_duration=body.get("auto_archive_duration") or 1440,
        )
        self.threads[thread.id] = thread
        self._history[thread.id] = []
        self.on_event(
            "THREAD_CREATE", {**payloads.thread_payload(thread, self.guild_id), "newly_created": True}
        )
        return thread

    def edit_thread(self, thread_id: int, body: dict) -> dict:
        thread = self.threads.get(thread_id)
        if thread is None:
            raise DiscordError(404, UNKNOWN_CHANNEL, "Unknown Channel")
        thread.name = body.get("name", thread.name)
        thread.archived = body.get("archived", thread.archived)
        thread.locked = body.get("locked", thread.locked)
        payload = payloads.thread_payload(thread, self.guild_id)
        self.on_event("THREAD_UPDATE", payload)
        return payload

    # -- messages ------------------------------------------------------------------------------------

    def store_attachment(self, filename: str, data: bytes, content_type: str) -> FakeAttachment:
        attachment = FakeAttachment(filename, data, id=self.new_id(), content_type=content_type)
        self._attachments[attachment.id] = attachment
        return attachment

    def attachment(self, attachment_id: int) -> FakeAttachment:
        return self._attachments[attachment_id]

    def attachment_url(self, attachment: FakeAttachment) -> str:
        return f"{self.cdn_base}/attachments/{attachment.id}/{quote(attachment.filename)}"

    def render_message(self, message: FakeMessage) -> dict:
        author = self.users[message.author_id]
        urls = [self.attachment_url(attachment) for attachment in message.attachments]
        return payloads.message_payload(message, author, self.guild_id, urls)

    def create_message(
        self,
        channel_id: int,
        body: dict,
        files: list[FakeAttachment],
        *,
        author: FakeUser | None = None,
        webhook_id: int | None = None,
        visible: bool = True,
    ) -> FakeMessage:
        """Post a message; `visible=False` (ephemeral replies) keeps it out of the channel's history."""
        if channel_id not in self._history:
            raise DiscordError(404, UNKNOWN_CHANNEL, "Unknown Channel")
        if channel_id in self._channels_closed_to_bot and author is None and webhook_id is None:
            raise DiscordError(403, MISSING_PERMISSIONS, "Missing Permissions")
        thread = self.threads.get(channel_id)
        if thread is not None and thread.archived:
            if thread.locked:
                raise DiscordError(400, THREAD_LOCKED, "Thread is locked")
            thread.archived = False
        message = FakeMessage(
            id=self.new_id(),
            channel_id=channel_id,
            author_id=(author or self.bot_user).id,
            webhook_id=webhook_id,
        )
        self._apply(message, body, files)
        self._messages[message.id] = message
        if visible:
            self._history[channel_id].append(message)
            if thread is not None:
                thread.message_count += 1
            self.on_event("MESSAGE_CREATE", self.render_message(message))
        return message

    def edit_message(self, message: FakeMessage, body: dict, files: list[FakeAttachment]) -> FakeMessage:
        """PATCH semantics: given fields replace, `attachments` (if given) lists the ids to keep."""
        message.edit_history.append(message.snapshot())
        message.edits += 1
        kept = message.attachments
        if body.get("attachments") is not None:
            keep_ids = {str(entry.get("id")) for entry in body["attachments"]}
            kept = [attachment for attachment in message.attachments if str(attachment.id) in keep_ids]
        message.attachments = kept
        self._apply(message, body, files)
        if not message.flags & EPHEMERAL:
            self.on_event("MESSAGE_UPDATE", self.render_message(message))
        return message

    def delete_message(self, message: FakeMessage) -> None:
        message.deleted = True
        event = {"id": str(message.id), "channel_id": str(message.channel_id), "guild_id": str(self.guild_id)}
        self.on_event("MESSAGE_DELETE", event)

    @staticmethod
    def _apply(message: FakeMessage, body: dict, files: list[FakeAttachment]) -> None:
        for name in MESSAGE_FIELDS:
            if body.get(name) is not None:
                setattr(message, name, body[name])
        message.attachments = message.attachments + files

    # -- interactions --------------------------------------------------------------------------------

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
            raise DiscordError(404, UNKNOWN_INTERACTION, "Unknown interaction")
        return interaction

    def interaction_for_webhook(self, application_id: int, token: str) -> FakeInteraction:
        if application_id == self.application_id:
            for interaction in self.interactions.values():
                if interaction.token == token:
                    return interaction
        raise DiscordError(404, UNKNOWN_WEBHOOK, "Unknown Webhook")

    def respond(self, interaction: FakeInteraction, body: dict, files: list[FakeAttachment]) -> dict:
        """The initial response (callback). Returns what Discord returns for `?with_response=true`."""
        if interaction.responses:
            raise DiscordError(400, ALREADY_ACKNOWLEDGED, "Interaction has already been acknowledged.")
        kind, data = body.get("type"), body.get("data") or {}
        if kind in (6, 7) and interaction.source_message is None:
            raise DiscordError(400, INVALID_FORM_BODY, "Interaction response type is not valid here")
        interaction.responses.append(InteractionCallback(kind, data, files, time.monotonic()))

        if kind == 4:
            interaction.original = self._interaction_message(interaction, data, files)
        elif kind == 5:
            loading = {"flags": LOADING | (data.get("flags", 0) & EPHEMERAL)}
            interaction.original = self._interaction_message(interaction, loading, [])
        elif kind in (6, 7):
            interaction.original = interaction.source_message
            if kind == 7:
                self.edit_message(interaction.source_message, data, files)

        message = interaction.original
        reply: dict = {
            "interaction": {
                "id": str(interaction.id),
                "type": interaction.type,
                "response_message_id": str(message.id) if message else None,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(message and message.ephemeral),
            },
            "resource": {"type": kind},
        }
        if kind in (4, 7):
            reply["resource"]["message"] = self.render_message(message)
        return reply

    def followup(self, interaction: FakeInteraction, body: dict, files: list[FakeAttachment]) -> FakeMessage:
        """A webhook followup. As on Discord, the first one after a defer fills in the "thinking" message."""
        if not interaction.responses:
            raise DiscordError(404, UNKNOWN_WEBHOOK, "Unknown Webhook")
        original = interaction.original
        if original is not None and original.flags & LOADING:
            self._apply(original, {**body, "flags": original.flags & EPHEMERAL}, files)
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
            raise DiscordError(404, UNKNOWN_MESSAGE, "Unknown Message")
        return message

    def edit_webhook_message(
        self, message: FakeMessage, body: dict, files: list[FakeAttachment]
    ) -> FakeMessage:
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
