"""Every text the bot sends, fitted to Discord's limits here, in one place.

Discord refuses a whole message (400, 50035) when one part is too long, and a refused answer to an
interaction leaves "thinking..." forever. So long texts are shortened with an ellipsis instead.
"""

from __future__ import annotations

import discord

CONTENT = 2000
EMBED_TITLE = 256
EMBED_DESCRIPTION = 4096
EMBED_FIELDS = 25
FIELD_NAME = 256
FIELD_VALUE = 1024
FOOTER = 2048
EMBED_TOTAL = 6000
THREAD_NAME = 100
ELLIPSIS = "…"


def fit(text: str, limit: int = CONTENT) -> str:
    """`text`, cut to `limit` characters with an ellipsis when it is longer."""
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS


def fit_embed(embed: discord.Embed) -> discord.Embed:
    """The embed with each part within its own limit and all of them within the 6000 in total.

    When the total is too long, the description gives way first, then the fields from the last.
    """
    if embed.title:
        embed.title = fit(embed.title, EMBED_TITLE)
    if embed.description:
        embed.description = fit(embed.description, EMBED_DESCRIPTION)
    fields = embed.fields[:EMBED_FIELDS]
    embed.clear_fields()
    for field in fields:
        embed.add_field(name=fit(field.name or "-", FIELD_NAME), value=fit(field.value or "-", FIELD_VALUE),
                        inline=bool(field.inline))
    if embed.footer.text:
        embed.set_footer(text=fit(embed.footer.text, FOOTER), icon_url=embed.footer.icon_url)
    excess = len(embed) - EMBED_TOTAL
    if excess > 0 and embed.description:
        embed.description = fit(embed.description, max(len(ELLIPSIS), len(embed.description) - excess))
    while len(embed) > EMBED_TOTAL and embed.fields:
        embed.remove_field(len(embed.fields) - 1)
    return embed


def chunks(text: str, limit: int = CONTENT) -> list[str]:
    """`text` in pieces of at most `limit` characters, split between paragraphs, else lines, else words."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), 0) or max(window.rfind("\n"), 0) or max(window.rfind(" "), 0) or limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces
