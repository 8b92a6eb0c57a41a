"""`FakeDiscord`: the fake guild state with a local REST server and gateway around it, and the helpers
tests use to act as Discord users (slash commands, button presses, modal submits) and to wait for the bot.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

from aiohttp import web

from . import payloads
from .gateway import Gateway
from .models import FakeAttachment, FakeInteraction, FakeMessage, FakeUser, InteractionCallback
from .rest import RateLimitRule, RestApi
from .state import GuildState

APPLICATION_COMMAND, MESSAGE_COMPONENT, MODAL_SUBMIT = 2, 3, 5
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
USER_OPTION, CHANNEL_OPTION, ROLE_OPTION, ATTACHMENT_OPTION = 6, 7, 8, 11
ATTACHMENT_SIZE_LIMIT = 25 * 1024 * 1024
POLL_INTERVAL = 0.01


class FakeDiscord(GuildState):
    """One application, its bot user and one guild with a "workshop" text channel, served locally.

    Point the bot at it with `configure_discord_endpoints(fake.api_base, fake.gateway_url)` and start it
    with `fake.token`. Give the client `guild_ready_timeout=0.05` (or similar): the fake has one guild, and
    discord.py otherwise waits 2 s after the last GUILD_CREATE before it is ready.
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

        app = web.Application(middlewares=[self._rest.middleware])
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
        """Invoke a registered slash command as `user`.

        `options` maps option names to values (a FakeUser for user options, ids for channels and roles);
        `attachments` maps attachment option names to (filename, bytes, content type).
        """
        command = self.find_command(name)
        definitions = command.get("options", [])
        data_options: list[dict] = []
        leaf_options = data_options
        for part in subcommand or []:
            definition = _option_definition(definitions, part, f"/{name}")
            group = {"name": part, "type": definition["type"], "options": []}
            leaf_options.append(group)
            leaf_options = group["options"]
            definitions = definition.get("options", [])
        if any(d["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP) for d in definitions):
            raise ValueError(f"/{name} {' '.join(subcommand or [])} needs a subcommand")

        values = dict(options or {})
        for option_name, (filename, data, content_type) in (attachments or {}).items():
            values[option_name] = self.store_attachment(filename, data, content_type)
        resolved: dict[str, dict] = {}
        for option_name, value in values.items():
            definition = _option_definition(definitions, option_name, f"/{name}")
            option_value = self._option_value(definition["type"], value, resolved)
            leaf_options.append({"name": option_name, "type": definition["type"], "value": option_value})
        missing = [d["name"] for d in definitions if d.get("required") and d["name"] not in values]
        if missing:
            raise ValueError(f"/{name} is missing required options {missing}")

        data = {"id": command["id"], "name": name, "type": 1, "options": data_options}
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        if resolved:
            data["resolved"] = resolved
        interaction = self.register_interaction(APPLICATION_COMMAND, user, channel_id or self.channel_id)
        return await self._dispatch_interaction(interaction, data)

    async def press_button(self, user: FakeUser, message: FakeMessage, custom_id: str) -> FakeInteraction:
        if custom_id not in message.custom_ids():
            raise ValueError(
                f"message {message.id} has no component {custom_id!r}; it has {message.custom_ids()}"
            )
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

    def _recent_activity(self) -> str:
        recent = [f"{r.method} {r.path} -> {r.status}" for r in self.requests[-5:]]
        unknown = [f"{r.method} {r.path}" for r in self.unknown_routes]
        return f"last requests: {recent}; unknown routes: {unknown}"

    # -- internals -----------------------------------------------------------------------------------

    async def _dispatch_interaction(self, interaction: FakeInteraction, data: dict) -> FakeInteraction:
        if not self._gateway.connected:
            raise RuntimeError("no bot is connected to the fake gateway; start the bot and wait until ready")
        interaction.payload = self._interaction_payload(interaction, data)
        self._gateway.dispatch("INTERACTION_CREATE", interaction.payload)
        await self._gateway.flush()
        interaction.dispatched_at = time.monotonic()
        return interaction

    def _interaction_payload(self, interaction: FakeInteraction, data: dict) -> dict:
        user = interaction.user
        payload = {
            "id": str(interaction.id),
            "application_id": str(self.application_id),
            "type": interaction.type,
            "data": data,
            "guild_id": str(self.guild_id),
            "guild": {"id": str(self.guild_id), "locale": "en-US", "features": []},
            "channel_id": str(interaction.channel_id),
            "channel": self.channel_payload(interaction.channel_id),
            "member": payloads.member_payload(user, permissions=self.member_permissions(user)),
            "token": interaction.token,
            "version": 1,
            "app_permissions": str(self.member_permissions(self.bot_user)),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)},
            "context": 0,
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        }
        if interaction.source_message is not None:
            payload["message"] = self.render_message(interaction.source_message)
        return payload

    def _option_value(self, option_type: int, value: object, resolved: dict[str, dict]) -> object:
        """The option's wire value; users, channels, roles and attachments also go into `resolved`."""
        if option_type == USER_OPTION:
            member = payloads.member_payload(value, permissions=self.member_permissions(value))
            resolved.setdefault("users", {})[str(value.id)] = member.pop("user")
            resolved.setdefault("members", {})[str(value.id)] = member
            return str(value.id)
        if option_type == CHANNEL_OPTION:
            channel = {
                **self.channel_payload(value),
                "permissions": str(self.member_permissions(self.bot_user)),
            }
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
            "user": {
                **payloads.user_payload(self.bot_user),
                "verified": True,
                "mfa_enabled": False,
                "flags": 0,
            },
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "session_id": session_id,
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
        }
        return [("READY", ready), ("GUILD_CREATE", self.guild_payload())]

    def _member_chunk(self, request: dict) -> dict:
        members = [payloads.member_payload(user) for user in self.users.values()]
        chunk = {"guild_id": str(self.guild_id), "members": members, "chunk_index": 0, "chunk_count": 1}
        if request.get("nonce"):
            chunk["nonce"] = request["nonce"]
        return chunk


def _option_definition(definitions: list[dict], name: str, command: str) -> dict:
    for definition in definitions:
        if definition["name"] == name:
            return definition
    raise LookupError(f"{command} has no option {name!r}; it has {[d['name'] for d in definitions]}")
