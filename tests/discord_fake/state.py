"""The fake's world: one application and its bot user, guilds with roles, members and channels, DMs, messages.

Nothing here knows about HTTP; `rest.py` translates requests into these calls and `DiscordError`s into
Discord's JSON errors. `on_event(name, data)` is how state changes reach the gateway. Time is the fake's
clock, `now()`: time.monotonic() plus whatever tests added with `advance_clock`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from urllib.parse import quote

import discord

from . import limits, payloads
from .mentions import resolve_pings
from .models import (
    DEFAULT_UPLOAD_LIMIT,
    LOADING,
    DiscordError,
    FakeAttachment,
    FakeChannel,
    FakeGuild,
    FakeMessage,
    FakeRole,
    FakeThread,
    FakeUser,
    RecordedRequest,
    SnowflakeFactory,
    Violation,
)
from .ratelimits import EditLimits

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
DM_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
    add_reactions=True,
    use_application_commands=True,
).value
ALL_PERMISSIONS = discord.Permissions.all().value
ADMINISTRATOR = discord.Permissions(administrator=True).value
DM_CHANNEL = 1
PRIVATE_THREAD = 12

UNKNOWN_CHANNEL = 10003
UNKNOWN_GUILD = 10004
UNKNOWN_MESSAGE = 10008
THREAD_ALREADY_CREATED = 160004
THREAD_LOCKED = 50083
MISSING_PERMISSIONS = 50013
CANNOT_MESSAGE_USER = 50007
INVALID_CHANNEL_TYPE = 50024

MESSAGE_FIELDS = ("content", "embeds", "components", "flags", "message_reference")


def missing_permissions(reason: str) -> DiscordError:
    """403 50013. Only ever raised for permissions a test took away, so never a violation."""
    return DiscordError(403, MISSING_PERMISSIONS, "Missing Permissions", reason=reason)


class GuildState:
    def __init__(self) -> None:
        self.new_id = SnowflakeFactory()
        self.token = f"fake.{secrets.token_urlsafe(24)}"
        self.application_id = self.new_id()
        # Set once the server knows its port.
        self.cdn_base = ""
        self.api_base = ""
        self.gateway_url = ""
        self.on_event: Callable[[str, dict], None] = lambda event, data: None

        self.guilds: dict[int, FakeGuild] = {}
        self.users: dict[int, FakeUser] = {}
        self.roles: dict[int, FakeRole] = {}
        self.channels: dict[int, FakeChannel] = {}  # guild channels and DMs
        self.threads: dict[int, FakeThread] = {}
        self.requests: list[RecordedRequest] = []
        self.unknown_routes: list[RecordedRequest] = []
        self.violations: list[Violation] = []
        self.edit_limits = EditLimits()
        self.registration_count = 0
        self._clock_offset = 0.0
        self._messages: dict[int, FakeMessage] = {}
        self._history: dict[int, list[FakeMessage]] = {}
        self._attachments: dict[int, FakeAttachment] = {}
        self._global_commands: list[dict] = []
        self._guild_commands: dict[int, list[dict]] = {}
        self._thread_failure_code: int | None = None
        self._bot_denials: dict[int, set[str]] = {}  # channel id -> permission names taken from the bot
        self._dm_channels: dict[int, int] = {}  # user id -> DM channel id
        self._closed_dms: set[int] = set()  # users who accept no direct messages from the bot

        self.bot_user = self._add_user("Easel", bot=True)
        self.bot_user_id = self.bot_user.id
        self.guild_id = self.add_guild("Easel Test Guild")
        self.owner = self.guilds[self.guild_id].owner
        self.channel_id = self.guilds[self.guild_id].channel_id

    # -- the clock -----------------------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() + self._clock_offset

    def advance_clock(self, seconds: float) -> None:
        """Move the fake's clock forward: interactions, tokens, messages and rate-limit windows all age."""
        self._clock_offset += seconds

    def age_message(self, message: FakeMessage, seconds: float) -> None:
        """Make one message `seconds` older (e.g. past the hour after which edits are scarce)."""
        message.created_at -= seconds

    # -- guilds, members, channels used by tests -----------------------------------------------------

    def add_guild(self, name: str) -> int:
        """A guild with its @everyone role, an owner, the bot (with its managed role) and a "workshop" channel."""
        guild_id = self.new_id()
        owner = self._add_user(f"{name} owner" if self.guilds else "owner")
        guild = FakeGuild(guild_id, name, owner, member_ids=[self.bot_user.id, owner.id])
        self.guilds[guild_id] = guild
        self.roles[guild_id] = FakeRole(guild_id, "@everyone", EVERYONE_PERMISSIONS, position=0, guild_id=guild_id)
        self.bot_user.role_ids.append(self.add_role("Easel", BOT_PERMISSIONS, managed=True, guild_id=guild_id))
        guild.channel_id = self.add_channel("workshop", guild_id=guild_id)
        self.on_event("GUILD_CREATE", self.guild_payload(guild_id))
        return guild_id

    def add_role(self, name: str, permissions: int = 0, *, managed: bool = False, guild_id: int | None = None) -> int:
        guild_id = guild_id or self.guild_id
        position = sum(role.guild_id == guild_id for role in self.roles.values())
        role = FakeRole(self.new_id(), name, permissions, position, managed=managed, guild_id=guild_id)
        self.roles[role.id] = role
        self.on_event("GUILD_ROLE_CREATE", {"guild_id": str(guild_id), "role": payloads.role_payload(role)})
        return role.id

    def add_member(
        self, name: str, *, permissions: int = 0, roles: list[int] = (), guild_id: int | None = None
    ) -> FakeUser:
        """A new user, member of `guild_id` (the default guild). `permissions` come through a role of its own."""
        user = self._add_user(name)
        self.add_to_guild(user, guild_id or self.guild_id, permissions=permissions, roles=roles)
        return user

    def add_to_guild(self, user: FakeUser, guild_id: int, *, permissions: int = 0, roles: list[int] = ()) -> None:
        """Make an existing user a member of another guild too."""
        guild = self.guild(guild_id)
        user.role_ids.extend(roles)
        if permissions:
            user.role_ids.append(self.add_role(f"{user.name}'s permissions", permissions, guild_id=guild_id))
        if user.id not in guild.member_ids:
            guild.member_ids.append(user.id)

    def add_channel(self, name: str, *, guild_id: int | None = None) -> int:
        guild_id = guild_id or self.guild_id
        position = sum(channel.guild_id == guild_id for channel in self.channels.values())
        channel = FakeChannel(self.new_id(), name, position, guild_id=guild_id)
        self.channels[channel.id] = channel
        self._history[channel.id] = []
        self.on_event("CHANNEL_CREATE", payloads.channel_payload(channel))
        return channel.id

    def dm_channel(self, user: FakeUser) -> int:
        """The bot's DM channel with `user` (type 1), made on first use as Discord does."""
        if user.id not in self._dm_channels:
            channel = FakeChannel(self.new_id(), "", 0, type=DM_CHANNEL, recipient_id=user.id)
            self.channels[channel.id] = channel
            self._history[channel.id] = []
            self._dm_channels[user.id] = channel.id
        return self._dm_channels[user.id]

    def close_dms(self, user: FakeUser) -> None:
        """The user accepts no direct messages from the bot: a DM answers 403 code 50007, as on Discord."""
        self._closed_dms.add(user.id)

    def _add_user(self, name: str, *, bot: bool = False) -> FakeUser:
        user = FakeUser(self.new_id(), name, [], bot=bot)
        self.users[user.id] = user
        return user

    def guild(self, guild_id: int) -> FakeGuild:
        guild = self.guilds.get(guild_id)
        if guild is None:
            raise DiscordError(404, UNKNOWN_GUILD, "Unknown Guild", bot_fault=True)
        return guild

    def guild_of(self, channel_id: int) -> int | None:
        """The guild a channel or thread belongs to; None for a DM."""
        if channel_id in self.threads:
            channel_id = self.threads[channel_id].parent_id
        if channel_id not in self.channels:
            raise DiscordError(404, UNKNOWN_CHANNEL, "Unknown Channel", bot_fault=True)
        return self.channels[channel_id].guild_id

    def upload_limit(self, channel_id: int) -> int:
        guild_id = self.guild_of(channel_id)
        return self.guilds[guild_id].upload_limit if guild_id else DEFAULT_UPLOAD_LIMIT

    def role_ids_in(self, user: FakeUser, guild_id: int) -> list[int]:
        return [role_id for role_id in user.role_ids if self.roles[role_id].guild_id == guild_id]

    def member_permissions(self, user: FakeUser, guild_id: int | None = None) -> int:
        """Guild permissions: @everyone's plus the member's roles'; administrators and the owner get all."""
        guild = self.guilds[guild_id or self.guild_id]
        value = self.roles[guild.id].permissions
        for role_id in self.role_ids_in(user, guild.id):
            value |= self.roles[role_id].permissions
        if value & ADMINISTRATOR or user.id == guild.owner.id:
            return ALL_PERMISSIONS
        return value

    def member_payload(self, user: FakeUser, guild_id: int, *, with_permissions: bool = False) -> dict:
        permissions = self.member_permissions(user, guild_id) if with_permissions else None
        return payloads.member_payload(user, self.role_ids_in(user, guild_id), permissions=permissions)

    def guild_payload(self, guild_id: int | None = None) -> dict:
        guild = self.guilds[guild_id or self.guild_id]
        return payloads.guild_payload(
            guild_id=guild.id,
            name=guild.name,
            owner_id=guild.owner.id,
            roles=[role for role in self.roles.values() if role.guild_id == guild.id],
            channels=[channel for channel in self.channels.values() if channel.guild_id == guild.id],
            threads=[thread for thread in self.threads.values() if self.guild_of(thread.id) == guild.id],
            members=[self.member_payload(self.users[user_id], guild.id) for user_id in guild.member_ids],
        )

    # -- the bot's permissions in channels -------------------------------------------------------------

    def deny_bot_permission(self, channel_id: int, *names: str) -> None:
        """Take permissions (discord.Permissions attribute names, e.g. "attach_files") from the bot in one
        channel, as a channel overwrite would. A thread inherits its parent's denials."""
        for name in names:
            discord.Permissions(**{name: True})  # unknown names raise TypeError here, not silently later
        self._bot_denials.setdefault(channel_id, set()).update(names)

    def allow_bot_permission(self, channel_id: int, *names: str) -> None:
        self._bot_denials.get(channel_id, set()).difference_update(names)

    def deny_bot_posting(self, channel_id: int, denied: bool = True) -> None:
        """The bot's own messages in this channel answer 403 Missing Permissions, as without Send Messages;
        `denied=False` gives the permission back."""
        if denied:
            self.deny_bot_permission(channel_id, "send_messages")
        else:
            self.allow_bot_permission(channel_id, "send_messages")

    def bot_permissions(self, channel_id: int) -> int:
        """The bot's permissions in a channel or thread, after the denials tests made."""
        guild_id = self.guild_of(channel_id)
        value = self.member_permissions(self.bot_user, guild_id) if guild_id else DM_PERMISSIONS
        denied = set(self._bot_denials.get(channel_id, ()))
        if channel_id in self.threads:
            denied |= self._bot_denials.get(self.threads[channel_id].parent_id, set())
        for name in denied:
            value &= ~discord.Permissions(**{name: True}).value
        return value

    def _bot_may(self, channel_id: int, name: str) -> bool:
        return bool(self.bot_permissions(channel_id) & discord.Permissions(**{name: True}).value)

    def _check_bot_may_post(self, channel_id: int, body: dict, files: list[FakeAttachment]) -> None:
        channel = self.channels.get(channel_id)
        if channel is not None and channel.recipient_id in self._closed_dms:
            raise DiscordError(403, CANNOT_MESSAGE_USER, "Cannot send messages to this user")
        in_thread = channel_id in self.threads
        posting = "send_messages_in_threads" if in_thread else "send_messages"
        # Threads have no overwrites on Discord; the fake still lets a test close one with "send_messages".
        thread_closed = in_thread and "send_messages" in self._bot_denials.get(channel_id, ())
        if not self._bot_may(channel_id, posting) or thread_closed:
            raise missing_permissions(f"no {posting} in channel {channel_id}")
        if files and not self._bot_may(channel_id, "attach_files"):
            raise missing_permissions(f"no attach_files in channel {channel_id}")
        if body.get("embeds") and not self._bot_may(channel_id, "embed_links"):
            raise missing_permissions(f"no embed_links in channel {channel_id}")

    # -- reading what the bot did --------------------------------------------------------------------

    def messages(self, channel_id: int) -> list[FakeMessage]:
        """Messages visible in a channel or thread, oldest first (ephemeral ones are never here)."""
        return [message for message in self._history.get(channel_id, []) if not message.deleted]

    def get_message(self, message_id: int) -> FakeMessage:
        message = self._messages.get(message_id)
        if message is None or message.deleted:
            raise DiscordError(404, UNKNOWN_MESSAGE, "Unknown Message")
        return message

    def pings_of(self, user: FakeUser | int) -> list[FakeMessage]:
        """Every message that notified this user, oldest first (deleted ones too: the ping happened)."""
        user_id = user if isinstance(user, int) else user.id
        return [message for message in self._messages.values() if user_id in message.pinged_users]

    def fail_thread_creation(self, code: int | None = 160006) -> None:
        """Make every later thread creation fail with this Discord error code; None restores success."""
        self._thread_failure_code = code

    def assert_no_violations(self) -> None:
        """Fail if the fake refused any request because the bot broke a Discord rule."""
        if self.violations:
            listed = "\n  ".join(str(violation) for violation in self.violations)
            raise AssertionError(f"the bot broke Discord's rules {len(self.violations)} time(s):\n  {listed}")

    # -- application commands ------------------------------------------------------------------------

    def registered_commands(self, guild_id: int | None = None) -> list[dict]:
        """Global commands, or the commands registered for `guild_id`."""
        if guild_id is None:
            return list(self._global_commands)
        return list(self._guild_commands.get(guild_id, []))

    def overwrite_commands(self, guild_id: int | None, commands: list[dict]) -> list[dict]:
        """Bulk overwrite (PUT). Like Discord, a command keeps its id when its name and type stay the same."""
        limits.check_commands(commands)
        self.registration_count += 1
        stored = [self._stored_command(guild_id, command) for command in commands]
        if guild_id is None:
            self._global_commands = stored
        else:
            self._guild_commands[guild_id] = stored
        return stored

    def upsert_command(self, guild_id: int | None, command: dict) -> dict:
        limits.check_commands([command], single=True)
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

    def find_command(self, name: str, guild_id: int | None) -> dict:
        """The chat-input command a user in `guild_id` (None: a DM with the bot) would be offered."""
        offered = [c for c in self.registered_commands(guild_id) if guild_id] + [
            c for c in self.registered_commands() if _usable_in(c, guild_id)
        ]
        for command in offered:
            if command["name"] == name and command["type"] == 1:
                return command
        where = f"guild {guild_id}" if guild_id else "a DM"
        raise LookupError(f"/{name} is not offered in {where}; offered: {[c['name'] for c in offered]}")

    # -- channels and threads ------------------------------------------------------------------------

    def channel_payload(self, channel_id: int) -> dict:
        if channel_id in self.channels:
            channel = self.channels[channel_id]
            if channel.type == DM_CHANNEL:
                return payloads.dm_channel_payload(channel, self.users[channel.recipient_id])
            return payloads.channel_payload(channel)
        if channel_id in self.threads:
            return payloads.thread_payload(self.threads[channel_id], self.guild_of(channel_id))
        raise DiscordError(404, UNKNOWN_CHANNEL, "Unknown Channel", bot_fault=True)

    def create_thread(
        self,
        parent_id: int,
        body: dict,
        *,
        starter_message_id: int | None = None,
        owner: FakeUser | None = None,
    ) -> FakeThread:
        if parent_id not in self.channels or self.channels[parent_id].type == DM_CHANNEL:
            if parent_id in self.threads or parent_id in self.channels:
                raise DiscordError(
                    400, INVALID_CHANNEL_TYPE, "Cannot execute action on this channel type", bot_fault=True
                )
            raise DiscordError(404, UNKNOWN_CHANNEL, "Unknown Channel", bot_fault=True)
        limits.check_thread_name(body)
        thread_type = body.get("type", 11) if starter_message_id is None else 11
        needed = "create_private_threads" if thread_type == PRIVATE_THREAD else "create_public_threads"
        if owner is None and not self._bot_may(parent_id, needed):
            raise missing_permissions(f"no {needed} in channel {parent_id}")
        if self._thread_failure_code is not None:
            raise DiscordError(400, self._thread_failure_code, "Thread creation failed (simulated by the fake)")
        if starter_message_id is not None and starter_message_id in self.threads:
            raise DiscordError(
                400, THREAD_ALREADY_CREATED, "A thread has already been created for this message", bot_fault=True
            )
        thread = FakeThread(
            id=starter_message_id or self.new_id(),
            parent_id=parent_id,
            name=body["name"],
            owner_id=(owner or self.bot_user).id,
            starter_message_id=starter_message_id,
            type=thread_type,
            auto_archive_duration=body.get("auto_archive_duration") or 1440,
        )
        self.threads[thread.id] = thread
        self._history[thread.id] = []
        guild_id = self.guild_of(thread.id)
        self.on_event("THREAD_CREATE", {**payloads.thread_payload(thread, guild_id), "newly_created": True})
        return thread

    def edit_thread(self, thread_id: int, body: dict) -> dict:
        thread = self.threads.get(thread_id)
        if thread is None:
            raise DiscordError(404, UNKNOWN_CHANNEL, "Unknown Channel", bot_fault=True)
        if "name" in body:
            limits.check_thread_name(body)
        thread.name = body.get("name", thread.name)
        thread.archived = body.get("archived", thread.archived)
        thread.locked = body.get("locked", thread.locked)
        payload = payloads.thread_payload(thread, self.guild_of(thread_id))
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
        mentioned = [self.users[user_id] for user_id in message.pinged_users if user_id in self.users]
        return payloads.message_payload(message, author, self.guild_of(message.channel_id), urls, mentioned)

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
        """Post a message; `visible=False` (ephemeral replies) keeps it out of the channel's history.

        Posts with the bot token (no `author`, no `webhook_id`) need the bot's channel permissions; interaction
        replies do not, as on Discord.
        """
        if channel_id not in self._history:
            raise DiscordError(404, UNKNOWN_CHANNEL, "Unknown Channel", bot_fault=True)
        if author is None and webhook_id is None:
            self._check_bot_may_post(channel_id, body, files)
        placeholder = bool((body.get("flags") or 0) & LOADING)  # a deferred response's "thinking" message
        limits.check_message(body, files, upload_limit=self.upload_limit(channel_id), creating=not placeholder)
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
            created_at=self.now(),
        )
        self._apply(message, body, files)
        if visible and not message.ephemeral:
            self._record_pings(message, body)
        self._messages[message.id] = message
        if visible:
            self._history[channel_id].append(message)
            if thread is not None:
                thread.message_count += 1
            self.on_event("MESSAGE_CREATE", self.render_message(message))
        return message

    def edit_message(self, message: FakeMessage, body: dict, files: list[FakeAttachment]) -> FakeMessage:
        """PATCH semantics: given fields replace, `attachments` (if given) lists the ids to keep.

        An edit notifies nobody, except the edit that turns a deferred "thinking" message into the reply."""
        kept = message.attachments
        if body.get("attachments") is not None:
            keep_ids = {str(entry.get("id")) for entry in body["attachments"]}
            kept = [attachment for attachment in message.attachments if str(attachment.id) in keep_ids]
        limits.check_message(
            body,
            files,
            upload_limit=self.upload_limit(message.channel_id),
            kept_attachments=len(kept),
            creating=False,
        )
        filling_deferred = bool(message.flags & LOADING)
        message.edit_history.append(message.snapshot())
        message.edits += 1
        message.attachments = kept
        self._apply(message, body, files)
        if filling_deferred and not message.ephemeral:
            self._record_pings(message, body)
        if not message.ephemeral:
            self.on_event("MESSAGE_UPDATE", self.render_message(message))
        return message

    def delete_message(self, message: FakeMessage) -> None:
        message.deleted = True
        event = {"id": str(message.id), "channel_id": str(message.channel_id)}
        guild_id = self.guild_of(message.channel_id)
        if guild_id:
            event["guild_id"] = str(guild_id)
        self.on_event("MESSAGE_DELETE", event)

    def _record_pings(self, message: FakeMessage, body: dict) -> None:
        replied_to = (message.message_reference or {}).get("message_id")
        replied_message = self._messages.get(int(replied_to)) if replied_to else None
        replied_user_id = replied_message.author_id if replied_message else None
        pings = resolve_pings(message.content, body.get("allowed_mentions"), replied_user_id)
        message.pinged_users = [user_id for user_id in pings.users if user_id != message.author_id]
        message.pinged_roles = pings.roles
        message.pinged_everyone = pings.everyone

    @staticmethod
    def _apply(message: FakeMessage, body: dict, files: list[FakeAttachment]) -> None:
        for name in MESSAGE_FIELDS:
            if body.get(name) is not None:
                setattr(message, name, body[name])
        message.attachments = message.attachments + files


def _usable_in(command: dict, guild_id: int | None) -> bool:
    """Whether a global command is offered in a guild (`guild_id`) or in the bot's DMs (None)."""
    contexts = command.get("contexts")
    if guild_id is None:
        return 1 in contexts if contexts is not None else command.get("dm_permission") is not False
    return contexts is None or 0 in contexts
