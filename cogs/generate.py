"""Generation commands: /imagine, /compare, /style, /dream, /nca, /cppn, and /queue, /cancel, /job, /recipe.

Thin: defer, read attachments, hand a `JobRequest` to the job service, show the receipt.
"""

from __future__ import annotations

import asyncio
import io
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import UserFacingError
from bot.jobs.parser import SEED_MAX, option_range
from bot.jobs.recipes import recipe_text
from bot.jobs.service import JobStatus
from bot.ui.attachments import read_attachment, read_recipe_attachment
from bot.ui.checks import host_guild
from bot.ui.embeds import place_text, result_embed, running_jobs_text
from bot.ui.fit import fit
from bot.ui.views import answer_with_receipt, recipe_view, request_from, result_view

if TYPE_CHECKING:
    from bot.client import Easel



def ranged(kind: type, technique: str, name: str) -> object:
    """A slash option type that tells Discord the option's range, so clients refuse what the job would."""
    low, high = option_range(technique, name)
    return app_commands.Range[kind, kind(low), kind(high)]


Seed = app_commands.Range[int, 0, SEED_MAX]
ImagineSteps, ImagineSize, Cutn = (ranged(int, "imagine", name) for name in ("steps", "size", "cutn"))
StyleSteps, StyleSize, StyleWeight = ranged(int, "style", "steps"), ranged(int, "style", "size"), ranged(
    float, "style", "style_weight")
DreamSteps, DreamSize, Octaves = (ranged(int, "dream", name) for name in ("steps", "size", "octaves"))
NcaSteps, NcaSize = ranged(int, "nca", "steps"), ranged(int, "nca", "size")
CppnSteps, CppnSize = ranged(int, "cppn", "steps"), ranged(int, "cppn", "size")
PARAMETERIZATIONS = [app_commands.Choice(name=name, value=name) for name in ("stack", "pixels", "fourier")]
COMPARED_SETTINGS = [app_commands.Choice(name=name, value=value) for value, name in (
    ("param", "param: stack, pixels and fourier"), ("lr", "lr: the learning rate"),
    ("cutn", "cutn: cutouts per step"), ("tv_weight", "tv_weight: smoothness"), ("seed", "seed: random starts"))]
DREAM_LAYERS = [app_commands.Choice(name=name, value=name) for name in (
    "relu2_2", "relu3_3", "relu4_1", "relu4_2", "relu4_3", "relu5_1", "relu5_3")]


class Generate(commands.Cog):
    def __init__(self, bot: Easel) -> None:
        self.bot = bot

    async def submit(
        self,
        interaction: discord.Interaction[Easel],
        technique: str,
        options: dict[str, object],
        *,
        text: str | None = None,
        attachments: dict[str, discord.Attachment | None] | None = None,
        seed: int | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        images = {name: await read_attachment(name, attachment, self.bot.settings.max_upload_bytes)
                  for name, attachment in (attachments or {}).items() if attachment is not None}
        request = await request_from(interaction, technique, options=options, text=text, images=images, seed=seed)
        await answer_with_receipt(interaction, await self.bot.jobs.submit(request))

    @app_commands.command(description="CLIP-guided optimisation: watch an image learn to match your prompt")
    @app_commands.describe(
        prompt="What to draw; weights like `a lighthouse | stormy sea:0.5 | text:-1`; inline --flags work too",
        steps="Optimisation steps", size="Side of the square image in pixels", seed="Same seed, same image",
        param="How the image is described: stack of layers, raw pixels or a Fourier spectrum",
        init_image="An image to start from", negative="Things to keep out, separated by commas",
        cutn="Random cutouts CLIP looks at each step", image_prompt="An image whose look to aim for as well",
    )
    @app_commands.choices(param=PARAMETERIZATIONS)
    async def imagine(self, interaction: discord.Interaction[Easel], prompt: str, steps: ImagineSteps | None = None,
                      size: ImagineSize | None = None, seed: Seed | None = None, param: str | None = None,
                      init_image: discord.Attachment | None = None, negative: str | None = None,
                      cutn: Cutn | None = None, image_prompt: discord.Attachment | None = None) -> None:
        await self.submit(interaction, "imagine", {"steps": steps, "size": size, "param": param,
                                                   "negative": negative, "cutn": cutn},
                          text=prompt, attachments={"init_image": init_image, "image_prompt": image_prompt},
                          seed=seed)

    @app_commands.command(description="Run one prompt several ways at once and watch the variants learn side by side")
    @app_commands.describe(
        prompt="What to draw, as in /imagine; inline --flags work too", what="The setting to compare",
        values="2 to 4 values to try, e.g. 0.01, 0.05, 0.2; leave empty for a spread that suits the setting",
        steps="Steps of each variant (each counts against the server's limit)", size="Side of each image in pixels",
        seed="Same seed, same images", param="How the images are described (unless param is compared)",
        negative="Things to keep out, separated by commas", cutn="Random cutouts CLIP looks at each step",
    )
    @app_commands.choices(what=COMPARED_SETTINGS, param=PARAMETERIZATIONS)
    async def compare(self, interaction: discord.Interaction[Easel], prompt: str, what: str,
                      values: app_commands.Range[str, 1, 100] | None = None, steps: ImagineSteps | None = None,
                      size: ImagineSize | None = None, seed: Seed | None = None, param: str | None = None,
                      negative: str | None = None, cutn: Cutn | None = None) -> None:
        # compare declares its settings as imagine does: the same ranges.
        await self.submit(interaction, "compare", {"what": what, "values": values, "steps": steps, "size": size,
                                                   "param": param, "negative": negative, "cutn": cutn},
                          text=prompt, seed=seed)

    @app_commands.command(description="Style transfer: paint one image's content in another's style")
    @app_commands.describe(content="The image whose layout to keep", style="The image whose textures to paint with",
                           steps="Optimisation steps", size="Longest side in pixels", seed="Same seed, same image",
                           style_weight="How strongly to match the style")
    async def style(self, interaction: discord.Interaction[Easel], content: discord.Attachment,
                    style: discord.Attachment, steps: StyleSteps | None = None, size: StyleSize | None = None,
                    seed: Seed | None = None, style_weight: StyleWeight | None = None) -> None:
        await self.submit(interaction, "style", {"steps": steps, "size": size, "style_weight": style_weight},
                          attachments={"content": content, "style": style}, seed=seed)

    @app_commands.command(description="Deep dream: amplify what a VGG16 layer sees in your image")
    @app_commands.describe(image="The image to dream on", layer="Early layers give textures, deep ones shapes",
                           steps="Ascent steps in total", size="Longest side in pixels", octaves="Scales to dream at",
                           seed="Same seed, same image")
    @app_commands.choices(layer=DREAM_LAYERS)
    async def dream(self, interaction: discord.Interaction[Easel], image: discord.Attachment,
                    layer: str | None = None, steps: DreamSteps | None = None, size: DreamSize | None = None,
                    octaves: Octaves | None = None, seed: Seed | None = None) -> None:
        await self.submit(interaction, "dream", {"layer": layer, "steps": steps, "size": size, "octaves": octaves},
                          attachments={"image": image}, seed=seed)

    @app_commands.command(description="Neural cellular automaton: train cells to grow your image from one seed")
    @app_commands.describe(target="The image to grow (a transparent PNG or emoji works best)",
                           steps="Training steps", size="Side of the result in pixels", seed="Same seed, same result")
    async def nca(self, interaction: discord.Interaction[Easel], target: discord.Attachment,
                  steps: NcaSteps | None = None, size: NcaSize | None = None, seed: Seed | None = None) -> None:
        await self.submit(interaction, "nca", {"steps": steps, "size": size},
                          attachments={"target": target}, seed=seed)

    @app_commands.command(description="CPPN: patterns from a small random network over x, y and r")
    @app_commands.describe(seed="Same seed, same pattern", size="Side of the image in pixels",
                           steps="Animation frames (or fitting steps with a target)",
                           target="An image to fit the network to (optional)",
                           flags="More options, e.g. --layers 10 --zoom 2 --colour hsv")
    async def cppn(self, interaction: discord.Interaction[Easel], seed: Seed | None = None,
                   size: CppnSize | None = None, steps: CppnSteps | None = None,
                   target: discord.Attachment | None = None,
                   flags: str | None = None) -> None:
        await self.submit(interaction, "cppn", {"size": size, "steps": steps}, text=flags,
                          attachments={"target": target}, seed=seed)

    @app_commands.command(name="queue", description="Your jobs, their places in the queue and when they start")
    async def queue(self, interaction: discord.Interaction[Easel]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        view = await self.bot.jobs.queue_view(interaction.user.id, interaction.guild_id)
        lines = [f"{view.queue_length} job{'s' if view.queue_length != 1 else ''} waiting in the queue."]
        if view.running:
            lines.append(f"Running now: {running_jobs_text(view.running)}.")
        for job, place in view.mine:
            where = "running now" if job.status == JobStatus.RUNNING else place_text(place)
            lines.append(f"• #{job.id} {job.technique}: {job.title} · {where}")
        if not view.mine:
            lines.append("You have no jobs waiting. Start one with /imagine.")
        await interaction.followup.send(fit("\n".join(lines)), ephemeral=True)

    @app_commands.command(name="cancel", description="Cancel your queued or running job (hosts: any job)")
    @app_commands.describe(job="The job number; leave empty for your running or latest job")
    async def cancel(self, interaction: discord.Interaction[Easel], job: int | None = None) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        if job is None:
            latest = await self.bot.jobs.latest_active_job(interaction.user.id)
            if latest is None:
                raise UserFacingError("You have no queued or running jobs to cancel.")
            job = latest.id
        _, message = await self.bot.jobs.cancel(job, interaction.user.id, await host_guild(interaction))
        await interaction.followup.send(message, ephemeral=True)

    @app_commands.command(name="job", description="Show a job again, with its result and buttons")
    @app_commands.describe(id="The job number")
    async def job(self, interaction: discord.Interaction[Easel], id: int) -> None:
        # A quick local lookup before the public defer, so a wrong number is answered privately.
        job = await self.bot.jobs.job_to_show(id, interaction.user.id, interaction.guild_id)
        await interaction.response.defer(thinking=True)
        if job.result_path is None:
            where = str(job.status) if job.status != JobStatus.QUEUED else place_text(await self.bot.jobs.place_of(job))
            text = f"Job #{job.id} ({job.technique}): {job.title} · {where}"
            if job.error:
                text += f"\n{job.error}"
            await interaction.followup.send(fit(text))
            return
        try:
            files, image_name = await asyncio.to_thread(self.bot.publisher.result_files, job,
                                                        interaction.filesize_limit)
        except Exception as error:
            # The public "thinking" message would carry the error: take it away and answer privately.
            await interaction.delete_original_response()
            if isinstance(error, FileNotFoundError):
                raise UserFacingError(f"Job #{job.id} is done, but its image is no longer stored here.") from None
            raise
        await interaction.followup.send(embed=result_embed(job, image_name), files=files,
                                        view=result_view(job.id, job.technique))

    @app_commands.command(name="recipe", description="Show the recipe inside an Easel PNG, with a button to run it")
    @app_commands.describe(image="A PNG that Easel posted (the original file, not a screenshot)")
    async def recipe(self, interaction: discord.Interaction[Easel], image: discord.Attachment) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        recipe, data = await read_recipe_attachment(image, self.bot.settings.max_upload_bytes)
        if interaction.guild_id is not None and await self.bot.moderation.check_texts(interaction.guild_id,
                                                                                      recipe.spec.texts()):
            raise UserFacingError("This recipe's prompt is not allowed on this server, so it is not shown here.")
        file = discord.File(io.BytesIO(data), filename="recipe.png")
        await interaction.followup.send(fit(f"**Recipe** · {recipe_text(recipe)}"), file=file, view=recipe_view(),
                                        ephemeral=True)


async def setup(bot: Easel) -> None:
    await bot.add_cog(Generate(bot))
