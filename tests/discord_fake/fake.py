"""`FakeDiscord`: the fake Discord state with a local REST server and gateway around it, and the helpers
tests use to act as Discord users (slash commands, autocomplete, button presses, modal submits) and to wait
for the bot.

What the bot must configure to behave well against it (and against Discord):
- `guild_ready_timeout=0.05` or similar, else discord.py waits 2 s after the last GUILD_CREATE;
- the client's `allowed_mentions` decides who a post pings; the fake records it per message
  (`message.pinged_users`, `fake.pings_of(user)`);
- message edits are limited to 5 per 5 s per channel (`fake.edit_limits`). discord.py sleeps and retries a
  429 by itself unless its `retry_after` exceeds the client's `max_ratelimit_timeout`, which discord.py
  never lets be below 30 s; so against a 5 s window the bot's edits are delayed, not refused, and every
  429 the bot caused is a violation. To see `discord.RateLimited` raised, give the client
  `max_ratelimit_timeout=30` and the fake a longer window (`fake.edit_limits.per_seconds = 60`). Edits of
  messages older than an hour (`fake.age_message`) answer 429 code 30046 without a Via header, which
  discord.py raises at once as `discord.HTTPException` (status 429).
- `fake.assert_no_violations()` fails a test in which the bot broke one of Discord's rules.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

from aiohttp import web

from . import payloads
from .gateway import Gateway
from .interactions import APPLICATION_COMMAND, AUTOCOMPLETE, MESSAGE_COMPONENT, MODAL_SUBMIT, InteractionState
from .models import FakeAttachment, FakeInteraction, FakeMessage, FakeUser, InteractionCallback
from .options import check_option_value, option_definition, walk_subcommands
from .rest import RateLimitRule, RestApi

USER_OPTION, CHANNEL_OPTION, ROLE_OPTION, ATTACHMENT_OPTION = 6, 7, 8, 11
GUILD_CONTEXT, BOT_DM_CONTEXT = 0, 1
POLL_INTERVAL = 0.01
REQUEST_BODY_LIMIT = 64 * 1024 * 1024  # above any upload limit Discord has, so limits.py decides


class FakeDiscord(InteractionState):
    """One application and its bot user, a default guild with a "workshop" text channel (`guild_id`,
    `channel_id`, `owner`), more guilds with `add_guild`, DMs with `dm_channel`, all served locally.

    Point the bot at it with `configure_discord_endpoints(fake.api_base, fake.gateway_url)` and start it
    with `fake.token`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._gateway = Gateway(self.token, self._ready_events, self._member_chunk)
        self.on_event = self._gateway.dispatch
        self._rest = RestApi(self)
        self._runner: web.AppRunner | None = None

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve on 127.0.0.1 on a free port."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        self.cdn_base = f"http://127.0.0.1:{port}"
        self.api_base = f"{self.cdn_base}/api/v10"
        self.gateway_url = f"ws://127.0.0.1:{port}/gateway"

        # aiohttp refuses bodies over 1 MiB by default; Discord takes uploads up to the limits in limits.py.
        app = web.Application(middlewares=[self._rest.middleware], client_max_size=REQUEST_BODY_LIMIT)
        app.add_routes([web.get("/gateway", self._gateway.handle), *self._rest.routes()])
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, listener).start()

    async def stop(self) -> None:
        await self._gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- failure injection ---------------------------------------------------------------------------

    @property
    def gateway_handshakes(self) -> list[str]:
        """Each gateway session the bot opened, as "identify" or "resume", in order."""
        return self._gateway.handshakes

    async def drop_gateway_connections(self) -> None:
        """Close the bot's websocket with a resumable code (4000), as a Discord hiccup would."""
        await self._gateway.close_all(code=4000)

    def rate_limit_next(self, n: int, route_contains: str = "/messages/", retry_after: float = 0.05) -> None:
        """The next `n` requests whose path contains `route_contains` answer 429 with Discord's headers."""
        self._rest.rate_limit_rules.append(RateLimitRule(n, route_contains, retry_after))

    # -- acting as users -----------------------------------------------------------------------------

    async def send_command(
        self,
        user: FakeUser,
        name: str,
        options: dict | None = None,
        *,
        subcommand: list[str] | None = None,
        attachments: dict[str, tuple[str, bytes, str]] | None = None,
        channel_id: int | None = None,
    ) -> FakeInteraction:
        """Invoke a registered slash command as `user` in `channel_id` (default: the default guild's workshop;
        a `dm_channel` for a DM).

        `options` maps option names to values (a FakeUser for user options, ids for channels and roles);
        `attachments` maps attachment option names to (filename, bytes, content type). Raises ValueError for
        what a Discord client would not send: unknown options, wrong types, values out of range.
        """
        channel_id = channel_id or self.channel_id
        command = self.find_command(name, self.guild_of(channel_id))
        data_options, leaf_options, definitions = walk_subcommands(command, subcommand or [])
        values = dict(options or {})
        for option_name, (filename, data, content_type) in (attachments or {}).items():
            values[option_name] = self.store_attachment(filename, data, content_type)
        resolved: dict[str, dict] = {}
        for option_name, value in values.items():
            definition = option_definition(definitions, option_name, f"/{name}")
            check_option_value(definition, value, f"/{name}")
            option_value = self._option_value(definition["type"], value, resolved, channel_id)
            leaf_options.append({"name": option_name, "type": definition["type"], "value": option_value})
        missing = [d["name"] for d in definitions if d.get("required") and d["name"] not in values]
        if missing:
            raise ValueError(f"/{name} is missing required options {missing}")

        data = self._command_data(command, data_options)
        if resolved:
            data["resolved"] = resolved
        interaction = self.register_interaction(APPLICATION_COMMAND, user, channel_id)
        return await self._dispatch_interaction(interaction, data)

    async def autocomplete(
        self,
        user: FakeUser,
        name: str,
        focused: str,
        typed: str,
        options: dict | None = None,
        *,
        subcommand: list[str] | None = None,
        channel_id: int | None = None,
    ) -> FakeInteraction:
        """`user` is typing `typed` into option `focused`; the bot answers with choices (callback type 8),
        in `interaction.responses[0].data["choices"]`. `options` are the values already filled in."""
        channel_id = channel_id or self.channel_id
        command = self.find_command(name, self.guild_of(channel_id))
        data_options, leaf_options, definitions = walk_subcommands(command, subcommand or [])
        for option_name, value in {**(options or {}), focused: typed}.items():
            definition = option_definition(definitions, option_name, f"/{name}")
            option = {"name": option_name, "type": definition["type"], "value": value}
            if option_name == focused:
                option["focused"] = True
            leaf_options.append(option)
        interaction = self.register_interaction(AUTOCOMPLETE, user, channel_id)
        return await self._dispatch_interaction(interaction, self._command_data(command, data_options))

    async def press_button(self, user: FakeUser, message: FakeMessage, custom_id: str) -> FakeInteraction:
        if custom_id not in message.custom_ids():
            raise ValueError(f"message {message.id} has no component {custom_id!r}; it has {message.custom_ids()}")
        interaction = self.register_interaction(MESSAGE_COMPONENT, user, message.channel_id, message)
        return await self._dispatch_interaction(interaction, {"custom_id": custom_id, "component_type": 2})

    async def submit_modal(
        self, user: FakeUser, custom_id: str, fields: dict[str, str], message: FakeMessage | None = None
    ) -> FakeInteraction:
        """Submit a modal's text inputs; pass `message` when the modal was opened from a component."""
        rows = [
            {"type": 1, "components": [{"type": 4, "custom_id": field_id, "value": value}]}
            for field_id, value in fields.items()
        ]
        channel_id = message.channel_id if message else self.channel_id
        interaction = self.register_interaction(MODAL_SUBMIT, user, channel_id, message)
        return await self._dispatch_interaction(interaction, {"custom_id": custom_id, "components": rows})

    # -- waiting for the bot -------------------------------------------------------------------------

    # The `timeout` parameters are the fake's documented API, hence the ASYNC109 exemptions.
    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout}s; {self._recent_activity()}")
            await asyncio.sleep(POLL_INTERVAL)

    async def wait_for_response(
        self,
        interaction: FakeInteraction,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> InteractionCallback:
        """The first callback the bot sent for `interaction`."""
        await self.wait_until(lambda: bool(interaction.responses), timeout)
        return interaction.responses[0]

    async def answer(self, interaction: FakeInteraction, timeout: float = 30.0) -> FakeMessage:  # noqa: ASYNC109
        """The bot's answer to an interaction: its first followup (after a defer, that fills in the "thinking"
        message), else the message it answered with at once."""
        def answered() -> bool:
            original = interaction.original
            return bool(interaction.followups) or (original is not None and bool(original.content or original.embeds))

        await self.wait_until(answered, timeout)
        return interaction.followups[0] if interaction.followups else interaction.original  # type: ignore[return-value]

    def _recent_activity(self) -> str:
        recent = [f"{r.method} {r.path} -> {r.status}" for r in self.requests[-5:]]
        unknown = [f"{r.method} {r.path}" for r in self.unknown_routes]
        return f"last requests: {recent}; unknown routes: {unknown}"

    # -- internals -----------------------------------------------------------------------------------

    @staticmethod
    def _command_data(command: dict, data_options: list[dict]) -> dict:
        data = {"id": command["id"], "name": command["name"], "type": 1, "options": data_options}
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        return data

    async def _dispatch_interaction(self, interaction: FakeInteraction, data: dict) -> FakeInteraction:
        if not self._gateway.connected:
            raise RuntimeError("no bot is connected to the fake gateway; start the bot and wait until ready")
        interaction.payload = self._interaction_payload(interaction, data)
        # Stamped before sending: the bot may answer before the flush below returns.
        interaction.dispatched_at = self.now()
        self._gateway.dispatch("INTERACTION_CREATE", interaction.payload)
        await self._gateway.flush()
        return interaction

    def _interaction_payload(self, interaction: FakeInteraction, data: dict) -> dict:
        user = interaction.user
        channel_id = interaction.channel_id
        guild_id = self.guild_of(channel_id)
        payload = {
            "id": str(interaction.id),
            "application_id": str(self.application_id),
            "type": interaction.type,
            "data": data,
            "channel_id": str(channel_id),
            "channel": self.channel_payload(channel_id),
            "token": interaction.token,
            "version": 1,
            "app_permissions": str(self.bot_permissions(channel_id)),
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": self.upload_limit(channel_id),
        }
        if guild_id is None:
            payload |= {
                "user": payloads.user_payload(user),
                "context": BOT_DM_CONTEXT,
                "authorizing_integration_owners": {"0": "0"},
            }
        else:
            payload |= {
                "guild_id": str(guild_id),
                "guild": {"id": str(guild_id), "locale": "en-US", "features": []},
                "member": self.member_payload(user, guild_id, with_permissions=True),
                "guild_locale": "en-US",
                "context": GUILD_CONTEXT,
                "authorizing_integration_owners": {"0": str(guild_id)},
            }
        if interaction.source_message is not None:
            payload["message"] = self.render_message(interaction.source_message)
        return payload

    def _option_value(self, option_type: int, value: object, resolved: dict[str, dict], channel_id: int) -> object:
        """The option's wire value; users, channels, roles and attachments also go into `resolved`."""
        guild_id = self.guild_of(channel_id)
        if option_type == USER_OPTION:
            resolved.setdefault("users", {})[str(value.id)] = payloads.user_payload(value)
            if guild_id is not None and value.id in self.guilds[guild_id].member_ids:
                member = self.member_payload(value, guild_id, with_permissions=True)
                member.pop("user")
                resolved.setdefault("members", {})[str(value.id)] = member
            return str(value.id)
        if option_type == CHANNEL_OPTION:
            channel = {**self.channel_payload(value), "permissions": str(self.bot_permissions(value))}
            resolved.setdefault("channels", {})[str(value)] = channel
            return str(value)
        if option_type == ROLE_OPTION:
            resolved.setdefault("roles", {})[str(value)] = payloads.role_payload(self.roles[value])
            return str(value)
        if option_type == ATTACHMENT_OPTION:
            if not isinstance(value, FakeAttachment):
                raise TypeError("pass attachment options through `attachments=`")
            attachment = payloads.attachment_payload(value, self.attachment_url(value))
            resolved.setdefault("attachments", {})[str(value.id)] = attachment
            return str(value.id)
        return value

    def _ready_events(self, session_id: str) -> list[tuple[str, dict]]:
        ready = {
            "v": 10,
            "user": {**payloads.user_payload(self.bot_user), "verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": str(guild_id), "unavailable": True} for guild_id in self.guilds],
            "session_id": session_id,
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
        }
        return [("READY", ready), *(("GUILD_CREATE", self.guild_payload(guild_id)) for guild_id in self.guilds)]

    def _member_chunk(self, request: dict) -> dict:
        guild_id = int(request.get("guild_id") or self.guild_id)
        members = [self.member_payload(self.users[user_id], guild_id) for user_id in self.guilds[guild_id].member_ids]
        chunk = {"guild_id": str(guild_id), "members": members, "chunk_index": 0, "chunk_count": 1}
        if request.get("nonce"):
            chunk["nonce"] = request["nonce"]
        return chunk
