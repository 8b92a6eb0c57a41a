"""Attachments people send: checked by what Discord says of them before they are downloaded."""

from __future__ import annotations

import discord

from bot.errors import UserFacingError
from bot.jobs.recipes import Recipe, RecipeError, read_recipe
from bot.ui.fit import fit

ACCEPTED_CONTENT_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")


async def read_attachment(name: str, attachment: discord.Attachment, max_bytes: int) -> bytes:
    """The attachment's bytes, after the checks that need no download."""
    if attachment.size > max_bytes:
        raise UserFacingError(
            f"`{name}` is {attachment.size / 1048576:.1f} MB; the limit is {max_bytes / 1048576:.1f} MB. "
            "Attach a smaller image."
        )
    content_type = (attachment.content_type or "").split(";")[0]
    if content_type and content_type not in ACCEPTED_CONTENT_TYPES:
        raise UserFacingError(f"`{name}` must be a PNG, JPEG, WebP or GIF image, not {content_type}.")
    return await attachment.read()


async def read_recipe_attachment(attachment: discord.Attachment, max_bytes: int) -> tuple[Recipe, bytes]:
    """The recipe in an attached PNG, and the PNG's bytes (downloaded once)."""
    data = await read_attachment("image", attachment, max_bytes)
    try:
        return read_recipe(data, max_bytes=max_bytes), data
    except RecipeError as error:
        raise UserFacingError(fit(str(error))) from None


ZIP_CONTENT_TYPES = ("application/zip", "application/x-zip-compressed", "application/octet-stream")


async def read_zip_attachment(attachment: discord.Attachment, max_bytes: int) -> bytes:
    """A zip's bytes, after the checks that need no download (its contents are checked by who reads it)."""
    if attachment.size > max_bytes:
        raise UserFacingError(f"The zip is {attachment.size / 1048576:.1f} MB; the limit is "
                              f"{max_bytes / 1048576:.1f} MB. Send fewer or smaller images.")
    content_type = (attachment.content_type or "").split(";")[0]
    if content_type and content_type not in ZIP_CONTENT_TYPES:
        raise UserFacingError(f"`{attachment.filename[:60]}` is {content_type}, not a zip. "
                              "Zip a folder of images and attach the zip.")
    return await attachment.read()
