"""A server's own generators: /train and /remove-model (hosts), /models, /sample and /walk.

Thin: defer, read the zip if one is attached, hand the request to the generator service, show the receipt.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import UserFacingError
from bot.generators import DataSource, TrainRequest
from bot.jobs.parser import SEED_MAX
from bot.jobs.spec import JobSpec
from bot.ui.attachments import read_zip_attachment
from bot.ui.checks import host_guild, host_only
from bot.ui.fit import fit
from bot.ui.views import answer_with_receipt, job_channel_id, request_from

if TYPE_CHECKING:
    from bot.client import Easel

TRAIN_SIZES = [app_commands.Choice(name=f"{size} px", value=size) for size in (32, 64, 128)]


def megabytes(count: int) -> str:
    return f"{count / 1048576:.1f} MB"


class Generators(commands.Cog):
    def __init__(self, bot: Easel) -> None:
        self.bot = bot

    @app_commands.command(name="train", description="Train a small GAN on this server's images (hosts)")
    @app_commands.describe(
        name="A name for the model: lowercase letters, digits and dashes",
        challenge="Train on the entries of this challenge (its number)",
        exercise="Train on the latest submissions to this exercise (its id)",
        images="Or a zip of images to train on",
        size="Side of the training images", mirror="Flip images left-right to double the data (default on)",
        steps="Training steps in all (default: this bot's limit)",
    )
    @app_commands.choices(size=TRAIN_SIZES)
    @app_commands.guild_only()
    @host_only()
    async def train(self, interaction: discord.Interaction[Easel], name: str,
                    challenge: app_commands.Range[int, 1] | None = None,
                    exercise: app_commands.Range[str, 1, 40] | None = None,
                    images: discord.Attachment | None = None, size: int = 64, mirror: bool = True,
                    steps: app_commands.Range[int, 1] | None = None) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        settings = self.bot.settings
        zip_data = await read_zip_attachment(images, settings.max_train_zip_bytes) if images is not None else None
        request = TrainRequest(
            guild_id=interaction.guild_id, host_id=interaction.user.id,
            channel_id=job_channel_id(interaction), name=name,
            source=DataSource(challenge_id=challenge, exercise_id=exercise, zip_data=zip_data),
            image_size=size, mirror=mirror, steps=steps,
        )
        model, receipt = await self.bot.generators.train(request)
        notes = [f"`{model.name}` trains on {model.images} images ({model.source}), {model.steps} steps in turns of "
                 f"{settings.train_chunk_steps}. Its thread shows a grid of samples after each turn."]
        await answer_with_receipt(interaction, dataclasses.replace(receipt, notes=notes))

    @app_commands.command(name="models", description="This server's generators, how far each has trained")
    @app_commands.guild_only()
    async def list_models(self, interaction: discord.Interaction[Easel]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        models = await self.bot.generators.models(interaction.guild_id)
        if not models:
            await interaction.followup.send("This server has no models yet. A host can start one with /train.",
                                            ephemeral=True)
            return
        lines = [f"• `{info.model.name}`: {info.status.value}, {info.steps_done}/{info.model.steps} steps, "
                 f"{info.model.images} images at {info.model.image_size} px ({info.model.source})"
                 for info in models]
        if await host_guild(interaction) is not None:
            used = await self.bot.generators.disk_used(interaction.guild_id)
            lines.append(f"Disk used by this server's models: {megabytes(used)} "
                         f"({len(models)} of {self.bot.settings.max_gan_models} models).")
        await interaction.followup.send(fit("\n".join(lines)), ephemeral=True)

    @app_commands.command(name="remove-model", description="Remove one of this server's generators and its files "
                                                          "(hosts)")
    @app_commands.describe(name="The model's name, as /models shows it")
    @app_commands.guild_only()
    @host_only()
    async def remove(self, interaction: discord.Interaction[Easel], name: str) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        model = await self.bot.generators.remove(interaction.guild_id, name, interaction.user.id)
        await interaction.followup.send(f"Removed `{model.name}` and its files.", ephemeral=True)

    @app_commands.command(name="sample", description="A grid of new images from one of this server's generators")
    @app_commands.describe(model="The model's name", n="How many images", seed="Same seed, same images",
                           size="Side of each image: larger than it trained at takes it out of its comfort zone")
    @app_commands.guild_only()
    async def sample(self, interaction: discord.Interaction[Easel], model: str,
                     n: app_commands.Range[int, 1, 64] = 16, seed: app_commands.Range[int, 0, SEED_MAX] | None = None,
                     size: app_commands.Range[int, 32, 512] | None = None) -> None:
        from bot.art.techniques.generator import SampleConfig  # imports torch: only when used

        await self._use(interaction, "sample", model, seed,
                        lambda found: SampleConfig(model_id=found.id, n=n, size=size))

    @app_commands.command(name="walk", description="A looping animation through one generator's latent space")
    @app_commands.describe(model="The model's name", seed="Same seed, same walk", frames="Frames in the loop")
    @app_commands.guild_only()
    async def walk(self, interaction: discord.Interaction[Easel], model: str,
                   seed: app_commands.Range[int, 0, SEED_MAX] | None = None,
                   frames: app_commands.Range[int, 8, 240] = 48) -> None:
        from bot.art.techniques.generator import WalkConfig

        await self._use(interaction, "walk", model, seed, lambda found: WalkConfig(model_id=found.id, frames=frames))

    async def _use(self, interaction: discord.Interaction[Easel], technique: str, name: str, seed: int | None,
                   config_for) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        request = await request_from(interaction, technique)
        chosen_seed = seed if seed is not None else secrets.randbelow(SEED_MAX + 1)

        def spec_for(model) -> JobSpec:
            try:
                return JobSpec(technique, config_for(model), chosen_seed)
            except ValueError as error:
                raise UserFacingError(str(error)) from None

        await answer_with_receipt(interaction, await self.bot.generators.use(request, name, spec_for))


async def setup(bot: Easel) -> None:
    await bot.add_cog(Generators(bot))
