"""JSON shapes the fake sends, close enough to Discord's that discord.py's models parse them."""

from __future__ import annotations

import datetime

from .models import DISCORD_EPOCH_MS, FakeAttachment, FakeChannel, FakeMessage, FakeRole, FakeThread, FakeUser


def timestamp_of(snowflake: int) -> str:
    millis = (snowflake >> 22) + DISCORD_EPOCH_MS
    return datetime.datetime.fromtimestamp(millis / 1000, tz=datetime.UTC).isoformat()


def now_iso() -> str:
    return datetime.datetime.now(tz=datetime.UTC).isoformat()


def user_payload(user: FakeUser) -> dict:
    return {
        "id": str(user.id),
        "username": user.name,
        "global_name": user.name,
        "discriminator": "0",
        "avatar": None,
        "bot": user.bot,
        "public_flags": 0,
    }


def member_payload(user: FakeUser, role_ids: list[int], *, permissions: int | None = None) -> dict:
    """A guild member with its roles in that guild; `permissions` is only present in interaction payloads."""
    payload = {
        "user": user_payload(user),
        "roles": [str(role_id) for role_id in role_ids],
        "nick": None,
        "avatar": None,
        "joined_at": timestamp_of(user.id),
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "pending": False,
        "flags": 0,
        "communication_disabled_until": None,
    }
    if permissions is not None:
        payload["permissions"] = str(permissions)
    return payload


def role_payload(role: FakeRole) -> dict:
    return {
        "id": str(role.id),
        "name": role.name,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "position": role.position,
        "permissions": str(role.permissions),
        "managed": role.managed,
        "mentionable": False,
        "flags": 0,
        "tags": {},
    }


def channel_payload(channel: FakeChannel) -> dict:
    return {
        "id": str(channel.id),
        "type": channel.type,
        "guild_id": str(channel.guild_id),
        "name": channel.name,
        "position": channel.position,
        "permission_overwrites": [],
        "nsfw": False,
        "parent_id": None,
        "topic": None,
        "rate_limit_per_user": 0,
        "last_message_id": None,
        "flags": 0,
    }


def dm_channel_payload(channel: FakeChannel, recipient: FakeUser) -> dict:
    return {
        "id": str(channel.id),
        "type": channel.type,
        "recipients": [user_payload(recipient)],
        "last_message_id": None,
        "flags": 0,
    }


def thread_payload(thread: FakeThread, guild_id: int) -> dict:
    return {
        "id": str(thread.id),
        "type": thread.type,
        "guild_id": str(guild_id),
        "parent_id": str(thread.parent_id),
        "owner_id": str(thread.owner_id),
        "name": thread.name,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "message_count": thread.message_count,
        "member_count": 1,
        "total_message_sent": thread.message_count,
        "flags": 0,
        "thread_metadata": {
            "archived": thread.archived,
            "locked": thread.locked,
            "auto_archive_duration": thread.auto_archive_duration,
            "archive_timestamp": timestamp_of(thread.id),
            "create_timestamp": timestamp_of(thread.id),
            "invitable": True,
        },
    }


def attachment_payload(attachment: FakeAttachment, url: str) -> dict:
    return {
        "id": str(attachment.id),
        "filename": attachment.filename,
        "size": len(attachment.data),
        "url": url,
        "proxy_url": url,
        "content_type": attachment.content_type,
    }


def message_payload(
    message: FakeMessage,
    author: FakeUser,
    guild_id: int | None,
    attachment_urls: list[str],
    mentioned: list[FakeUser],
) -> dict:
    """A message; `guild_id` is None in a DM. `mentioned` are the users it pinged."""
    payload = {
        "id": str(message.id),
        "channel_id": str(message.channel_id),
        "author": user_payload(author),
        "content": message.content,
        "timestamp": timestamp_of(message.id),
        "edited_timestamp": now_iso() if message.edits else None,
        "tts": False,
        "mention_everyone": message.pinged_everyone,
        "mentions": [user_payload(user) for user in mentioned],
        "mention_roles": [str(role_id) for role_id in message.pinged_roles],
        "attachments": [
            attachment_payload(attachment, url)
            for attachment, url in zip(message.attachments, attachment_urls, strict=True)
        ],
        "embeds": message.embeds,
        "components": message.components,
        "pinned": False,
        "type": 19 if message.message_reference else 0,
        "flags": message.flags,
    }
    if guild_id is not None:
        payload["guild_id"] = str(guild_id)
    if message.message_reference:
        payload["message_reference"] = message.message_reference
    if message.webhook_id:
        payload["webhook_id"] = str(message.webhook_id)
        payload["application_id"] = str(message.webhook_id)
    return payload


def guild_payload(
    *,
    guild_id: int,
    name: str,
    owner_id: int,
    roles: list[FakeRole],
    channels: list[FakeChannel],
    threads: list[FakeThread],
    members: list[dict],
) -> dict:
    """The GUILD_CREATE shape; GET /guilds/{id} uses the same minus the gateway-only lists."""
    return {
        "id": str(guild_id),
        "name": name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": str(owner_id),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "preferred_locale": "en-US",
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "max_members": 500000,
        "features": [],
        "emojis": [],
        "stickers": [],
        "roles": [role_payload(role) for role in roles],
        "unavailable": False,
        "large": False,
        "lazy": True,
        "joined_at": timestamp_of(guild_id),
        "member_count": len(members),
        "channels": [channel_payload(channel) for channel in channels],
        "threads": [thread_payload(thread, guild_id) for thread in threads if not thread.archived],
        "members": members,
        "presences": [],
        "voice_states": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
    }


def application_payload(application_id: int, name: str, owner: FakeUser) -> dict:
    return {
        "id": str(application_id),
        "name": name,
        "icon": None,
        "description": "",
        "summary": "",
        "type": None,
        "bot_public": True,
        "bot_require_code_grant": False,
        "verify_key": "0" * 64,
        "owner": user_payload(owner),
        "team": None,
        "flags": 0,
        "interactions_endpoint_url": None,
        "redirect_uris": [],
        "tags": [],
    }
