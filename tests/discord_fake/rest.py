"""The fake's REST API under /api/v10, plus attachment downloads under /attachments.

Every request is recorded. JSON replies carry `Content-Type: application/json` exactly, because discord.py
only parses bodies with that header. Unmatched routes answer a Discord-style 404 and are also recorded in
`state.unknown_routes` so tests notice calls the fake does not know.
"""

from __future__ import annotations

import json
import mimetypes
import time
from contextvars import ContextVar
from dataclasses import dataclass

from aiohttp import web

from . import payloads
from .interactions import InteractionState
from .models import DiscordError, FakeAttachment, FakeMessage, RecordedRequest, Violation
from .ratelimits import rate_limited

API_PREFIX = "/api/v10"
UNKNOWN_APPLICATION = 10002
UNKNOWN_MEMBER = 10007
UNKNOWN_MESSAGE = 10008
UNKNOWN_USER = 10013
MISSING_ACCESS = 50001
# Routes authorised by the interaction token in the path rather than the bot token.
TOKEN_IN_PATH_PREFIXES = ("/interactions/", "/webhooks/")

ID = r"{%s:\d+}"

# aiohttp serves each request in its own task, so this holds the request being handled.
_current_record: ContextVar[RecordedRequest] = ContextVar("current_record")


def _body():
    """The parsed JSON (or multipart payload_json) body of the request being handled; {} when empty."""
    body = _current_record.get().json
    return {} if body is None else body


def _files() -> list[FakeAttachment]:
    return _current_record.get().files


def json_response(data: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def error_response(status: int, code: int, message: str) -> web.Response:
    return json_response({"message": message, "code": code}, status=status)


def _channel_id(request: web.Request) -> int:
    return int(request.match_info["channel"])


@dataclass
class RateLimitRule:
    remaining: int
    route_contains: str
    retry_after: float


class RestApi:
    def __init__(self, state: InteractionState) -> None:
        self.state = state
        self.rate_limit_rules: list[RateLimitRule] = []

    def routes(self) -> list[web.RouteDef]:
        app_commands = f"/applications/{ID % 'app'}/commands"
        guild_commands = f"/applications/{ID % 'app'}/guilds/{ID % 'guild'}/commands"
        channel = f"/channels/{ID % 'channel'}"
        message = f"{channel}/messages/{ID % 'message'}"
        webhook = f"/webhooks/{ID % 'app'}/{{token}}"
        guild = f"/guilds/{ID % 'guild'}"
        api = [
            web.get("/users/@me", self.get_bot_user),
            web.post("/users/@me/channels", self.post_dm_channel),
            web.get("/oauth2/applications/@me", self.get_application),
            web.get("/applications/@me", self.get_application),
            web.get("/gateway", self.get_gateway),
            web.get("/gateway/bot", self.get_gateway),
            web.get(app_commands, self.get_commands),
            web.put(app_commands, self.put_commands),
            web.post(app_commands, self.post_command),
            web.get(guild_commands, self.get_commands),
            web.put(guild_commands, self.put_commands),
            web.post(guild_commands, self.post_command),
            web.get(channel, self.get_channel),
            web.patch(channel, self.patch_channel),
            web.get(f"{channel}/messages", self.get_channel_messages),
            web.post(f"{channel}/messages", self.post_message),
            web.get(message, self.get_message),
            web.patch(message, self.patch_message),
            web.delete(message, self.delete_message),
            web.post(f"{message}/threads", self.post_thread_from_message),
            web.post(f"{channel}/threads", self.post_thread),
            web.post(f"{channel}/typing", self.post_typing),
            web.post(f"/interactions/{ID % 'interaction'}/{{token}}/callback", self.post_callback),
            web.post(webhook, self.post_followup),
            web.get(f"{webhook}/messages/{{ref}}", self.get_webhook_message),
            web.patch(f"{webhook}/messages/{{ref}}", self.patch_webhook_message),
            web.delete(f"{webhook}/messages/{{ref}}", self.delete_webhook_message),
            web.get(guild, self.get_guild),
            web.get(f"{guild}/members/{ID % 'user'}", self.get_member),
            web.get(f"{guild}/channels", self.get_guild_channels),
            web.get(f"{guild}/roles", self.get_roles),
        ]
        cdn = web.get(f"/attachments/{ID % 'attachment'}/{{filename}}", self.get_attachment_bytes)
        return [*(web.route(r.method, API_PREFIX + r.path, r.handler) for r in api), cdn]

    # -- middleware: recording, auth, injected rate limits, errors -------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await handler(request)  # the gateway connection is not a REST request
        path = request.path.removeprefix(API_PREFIX)
        body, files = await self._read_body(request)
        record = RecordedRequest(request.method, path, dict(request.query), body, files, time.monotonic())
        self.state.requests.append(record)
        _current_record.set(record)
        response = await self._answer(request, path, handler, record)
        record.status = response.status
        return response

    async def _answer(
        self, request: web.Request, path: str, handler, record: RecordedRequest
    ) -> web.StreamResponse:
        needs_bot_token = request.path.startswith(API_PREFIX) and not path.startswith(TOKEN_IN_PATH_PREFIXES)
        if needs_bot_token and request.headers.get("Authorization") != f"Bot {self.state.token}":
            return error_response(401, 0, "401: Unauthorized")
        rule = next((r for r in self.rate_limit_rules if r.remaining > 0 and r.route_contains in path), None)
        if rule is not None:
            rule.remaining -= 1
            error = rate_limited(rule.retry_after, bot_fault=False)
            return json_response(error.body(), status=429, headers=error.headers)
        try:
            return await handler(request)
        except DiscordError as error:
            if error.bot_fault:
                violation = Violation(record.method, record.path, error.status, error.code, error.reason)
                self.state.violations.append(violation)
            return json_response(error.body(), status=error.status, headers=error.headers)
        except web.HTTPNotFound:
            self.state.unknown_routes.append(record)
            return error_response(404, 0, "404: Not Found")
        except web.HTTPMethodNotAllowed:
            self.state.unknown_routes.append(record)
            return error_response(405, 0, "405: Method Not Allowed")

    async def _read_body(self, request: web.Request) -> tuple[object, list[FakeAttachment]]:
        """JSON body, or multipart `payload_json` + `files[n]` (stored as attachments, in index order)."""
        if request.content_type == "application/json":
            return await request.json(), []
        if request.content_type != "multipart/form-data":
            return None, []
        body: object = None
        uploads: dict[int, FakeAttachment] = {}
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if part.name == "payload_json":
                body = json.loads(await part.text())
            elif part.name and part.name.startswith("files["):
                index = int(part.name[len("files[") : -1])
                filename = part.filename or f"file{index}"
                content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
                uploads[index] = self.state.store_attachment(filename, bytes(await part.read()), content_type)
        return body, [uploads[index] for index in sorted(uploads)]

    # -- identity and gateway ------------------------------------------------------------------------

    async def get_bot_user(self, request: web.Request) -> web.Response:
        return json_response({**payloads.user_payload(self.state.bot_user), "verified": True, "flags": 0})

    async def get_application(self, request: web.Request) -> web.Response:
        return json_response(
            payloads.application_payload(self.state.application_id, "Easel", self.state.owner)
        )

    async def get_gateway(self, request: web.Request) -> web.Response:
        limits = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return json_response({"url": self.state.gateway_url, "shards": 1, "session_start_limit": limits})

    async def post_dm_channel(self, request: web.Request) -> web.Response:
        user = self.state.users.get(int(_body().get("recipient_id", 0)))
        if user is None:
            raise DiscordError(400, UNKNOWN_USER, "Unknown User", bot_fault=True)
        return json_response(self.state.channel_payload(self.state.dm_channel(user)))

    # -- application commands ------------------------------------------------------------------------

    def _command_scope(self, request: web.Request) -> int | None:
        if int(request.match_info["app"]) != self.state.application_id:
            raise DiscordError(404, UNKNOWN_APPLICATION, "Unknown Application", bot_fault=True)
        if "guild" not in request.match_info:
            return None
        guild_id = int(request.match_info["guild"])
        if guild_id not in self.state.guilds:
            raise DiscordError(403, MISSING_ACCESS, "Missing Access", bot_fault=True)
        return guild_id

    async def get_commands(self, request: web.Request) -> web.Response:
        return json_response(self.state.registered_commands(self._command_scope(request)))

    async def put_commands(self, request: web.Request) -> web.Response:
        return json_response(self.state.overwrite_commands(self._command_scope(request), _body()))

    async def post_command(self, request: web.Request) -> web.Response:
        return json_response(self.state.upsert_command(self._command_scope(request), _body()))

    # -- channels, messages, threads -----------------------------------------------------------------

    async def get_channel(self, request: web.Request) -> web.Response:
        return json_response(self.state.channel_payload(_channel_id(request)))

    async def patch_channel(self, request: web.Request) -> web.Response:
        return json_response(self.state.edit_thread(_channel_id(request), _body()))

    async def get_channel_messages(self, request: web.Request) -> web.Response:
        channel_id = _channel_id(request)
        self.state.channel_payload(channel_id)  # 404 for unknown channels
        limit = int(request.query.get("limit", 50))
        newest_first = list(reversed(self.state.messages(channel_id)))[:limit]
        return json_response([self.state.render_message(message) for message in newest_first])

    async def post_message(self, request: web.Request) -> web.Response:
        message = self.state.create_message(_channel_id(request), _body(), _files())
        return json_response(self.state.render_message(message))

    def _channel_message(self, request: web.Request) -> FakeMessage:
        """A message reached through its channel: never an ephemeral one, which only its webhook can reach."""
        message = self.state.get_message(int(request.match_info["message"]))
        if message.channel_id != _channel_id(request):
            raise DiscordError(404, UNKNOWN_MESSAGE, "Unknown Message", bot_fault=True)
        if message.ephemeral:
            reason = "ephemeral messages are reached only through the interaction webhook"
            raise DiscordError(404, UNKNOWN_MESSAGE, "Unknown Message", bot_fault=True, reason=reason)
        return message

    async def get_message(self, request: web.Request) -> web.Response:
        return json_response(self.state.render_message(self._channel_message(request)))

    async def patch_message(self, request: web.Request) -> web.Response:
        message = self._channel_message(request)
        self.state.edit_limits.check(message.channel_id, self.state.now() - message.created_at, self.state.now())
        self.state.edit_message(message, _body(), _files())
        return json_response(self.state.render_message(message))

    async def delete_message(self, request: web.Request) -> web.Response:
        self.state.delete_message(self._channel_message(request))
        return web.Response(status=204)

    async def post_thread_from_message(self, request: web.Request) -> web.Response:
        message = self._channel_message(request)
        thread = self.state.create_thread(message.channel_id, _body(), starter_message_id=message.id)
        return json_response(payloads.thread_payload(thread, self.state.guild_of(thread.id)), status=201)

    async def post_thread(self, request: web.Request) -> web.Response:
        thread = self.state.create_thread(_channel_id(request), _body())
        return json_response(payloads.thread_payload(thread, self.state.guild_of(thread.id)), status=201)

    async def post_typing(self, request: web.Request) -> web.Response:
        self.state.channel_payload(_channel_id(request))  # 404 for unknown channels
        return web.Response(status=204)

    # -- interactions and their webhooks -------------------------------------------------------------

    async def post_callback(self, request: web.Request) -> web.Response:
        interaction = self.state.interaction_for_callback(
            int(request.match_info["interaction"]), request.match_info["token"]
        )
        return json_response(self.state.respond(interaction, _body(), _files()))

    def _webhook_interaction(self, request: web.Request):
        return self.state.interaction_for_webhook(int(request.match_info["app"]), request.match_info["token"])

    async def post_followup(self, request: web.Request) -> web.Response:
        message = self.state.followup(self._webhook_interaction(request), _body(), _files())
        return json_response(self.state.render_message(message))

    async def get_webhook_message(self, request: web.Request) -> web.Response:
        message = self.state.webhook_message(self._webhook_interaction(request), request.match_info["ref"])
        return json_response(self.state.render_message(message))

    async def patch_webhook_message(self, request: web.Request) -> web.Response:
        message = self.state.webhook_message(self._webhook_interaction(request), request.match_info["ref"])
        self.state.edit_webhook_message(message, _body(), _files())
        return json_response(self.state.render_message(message))

    async def delete_webhook_message(self, request: web.Request) -> web.Response:
        message = self.state.webhook_message(self._webhook_interaction(request), request.match_info["ref"])
        self.state.delete_message(message)
        return web.Response(status=204)

    # -- guilds --------------------------------------------------------------------------------------

    def _guild_id(self, request: web.Request) -> int:
        return self.state.guild(int(request.match_info["guild"])).id

    async def get_guild(self, request: web.Request) -> web.Response:
        guild = self.state.guild_payload(self._guild_id(request))
        for gateway_only in ("channels", "threads", "members", "presences", "voice_states", "joined_at"):
            guild.pop(gateway_only)
        return json_response(guild)

    async def get_member(self, request: web.Request) -> web.Response:
        guild_id = self._guild_id(request)
        user = self.state.users.get(int(request.match_info["user"]))
        if user is None or user.id not in self.state.guilds[guild_id].member_ids:
            raise DiscordError(404, UNKNOWN_MEMBER, "Unknown Member")
        return json_response(self.state.member_payload(user, guild_id))

    async def get_guild_channels(self, request: web.Request) -> web.Response:
        guild_id = self._guild_id(request)
        channels = [c.id for c in self.state.channels.values() if c.guild_id == guild_id]
        return json_response([self.state.channel_payload(channel_id) for channel_id in channels])

    async def get_roles(self, request: web.Request) -> web.Response:
        guild_id = self._guild_id(request)
        roles = [role for role in self.state.roles.values() if role.guild_id == guild_id]
        return json_response([payloads.role_payload(role) for role in roles])

    # -- CDN -----------------------------------------------------------------------------------------

    async def get_attachment_bytes(self, request: web.Request) -> web.Response:
        try:
            attachment = self.state.attachment(int(request.match_info["attachment"]))
        except KeyError:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=attachment.data, headers={"Content-Type": attachment.content_type})
