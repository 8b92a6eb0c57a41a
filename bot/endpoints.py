"""Where discord.py sends its REST calls and opens its gateway connection.

This lets the bot run behind a REST proxy such as nirn-proxy and against the test fake in
`tests/discord_fake`. Attachment and CDN downloads need nothing here: discord.py GETs the absolute URL
Discord (or the fake) put in the payload.
"""

from __future__ import annotations

import discord.gateway
import discord.http
import yarl


def configure_discord_endpoints(api_base: str, gateway_url: str | None) -> None:
    """Send REST calls to `api_base` (e.g. "http://127.0.0.1:8080/api/v10") and, when given, open the
    gateway at `gateway_url` instead of Discord's.

    Both settings are process-wide class attributes of discord.py:

    - `Route.BASE` prefixes every REST route, webhook and interaction-callback calls included.
    - `DiscordWebSocket.DEFAULT_GATEWAY` is where discord.py 2.x connects first: `Client.connect` no longer
      asks GET /gateway/bot (only `AutoShardedClient` without a shard count does, and the fake answers that
      with its own URL). discord.py also falls back to it after an invalidated session; resumes go to the
      `resume_gateway_url` from READY, which the fake sets to itself.
    """
    discord.http.Route.BASE = api_base.rstrip("/")
    if gateway_url is not None:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
