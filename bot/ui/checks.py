"""Permission checks shared by cogs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

if TYPE_CHECKING:
    from bot.client import Easel


class NotHost(app_commands.CheckFailure):
    pass


async def is_host(interaction: discord.Interaction[Easel]) -> bool:
    """Manage Server or the guild's configured host role makes a host."""
    if interaction.guild_id is None or not isinstance(interaction.user, discord.Member):
        return False
    config = await interaction.client.guild_service.get(interaction.guild_id)
    return config.is_host(
        manage_guild=interaction.permissions.manage_guild,
        role_ids=[role.id for role in interaction.user.roles],
    )


async def host_guild(interaction: discord.Interaction[Easel]) -> int | None:
    """The guild where the person is a host (the interaction's), or None: host powers stop at its border."""
    return interaction.guild_id if await is_host(interaction) else None


def host_only():
    """A check that refuses non-hosts with a message saying who may do it."""

    async def predicate(interaction: discord.Interaction[Easel]) -> bool:
        if await is_host(interaction):
            return True
        who = "members with the Manage Server permission"
        if interaction.guild_id is not None:
            config = await interaction.client.guild_service.get(interaction.guild_id)
            if config.host_role_id:
                who += f" or the <@&{config.host_role_id}> role"
        raise NotHost(f"Only hosts can do this: {who}.")

    return app_commands.check(predicate)
