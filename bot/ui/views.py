"""Persistent job buttons. The job id lives in each button's custom_id, so they work after a restart."""

from __future__ import annotations

import logging
import shlex
from typing import TYPE_CHECKING, Any

import discord

from bot.errors import UserFacingError
from bot.jobs.service import CONTINUE_FROM_FIELD, JobQueuedAnyway, JobRequest, Receipt
from bot.ui.attachments import read_recipe_attachment
from bot.ui.checks import host_guild, is_host
from bot.ui.embeds import parameters_text, place_text
from bot.ui.fit import fit

if TYPE_CHECKING:
    from bot.client import Easel

log = logging.getLogger(__name__)


def job_channel_id(interaction: discord.Interaction) -> int:
    """Where a job asked for here gets its thread: the channel, or the parent channel when asked in a thread."""
    channel = interaction.channel
    if isinstance(channel, discord.Thread) and channel.parent_id:
        return channel.parent_id
    return interaction.channel_id or 0


async def request_from(interaction: discord.Interaction[Easel], technique: str = "", **fields: Any) -> JobRequest:
    """A request by the person behind this interaction (`fields`: options, text, images, seed).

    Buttons leave `technique` empty: the job they derive from supplies it. A job asked for in an open
    lesson's thread takes the lesson's preset for its technique as defaults, below what the person gave.
    """
    channel = interaction.channel
    if technique and isinstance(channel, discord.Thread):
        defaults = await interaction.client.course.defaults_for_thread(channel.id, technique)
        given = {name: value for name, value in fields.pop("options", {}).items() if value is not None}
        fields["options"] = defaults | given
    return JobRequest(
        technique=technique,
        user_id=interaction.user.id,
        channel_id=job_channel_id(interaction),
        guild_id=interaction.guild_id,
        is_host=await is_host(interaction),
        **fields,
    )


def receipt_text(receipt: Receipt, thread_id: int | None, *, opening: bool = False) -> str:
    lines = [f"Queued job #{receipt.job.id}. {place_text(receipt.place)}"]
    if thread_id:
        lines.append(f"Watch it learn in <#{thread_id}>.")
    elif opening:
        lines.append("Its thread opens in a moment; the link comes here.")
    lines.extend(f"Note: {note}" for note in receipt.notes)
    return "\n".join(lines)


async def answer_with_receipt(interaction: discord.Interaction[Easel], receipt: Receipt) -> None:
    """Tells the new job's author at once that it is queued and where, then opens its thread and adds the link.

    The receipt comes first because a class that submits at once waits on Discord for the threads, not on us.
    """
    job = receipt.job
    try:
        await interaction.followup.send(fit(receipt_text(receipt, None, opening=True)), ephemeral=True)
    except Exception as error:  # the job is stored: whatever happened, say so rather than "try again"
        log.warning("job %s: could not send its receipt", job.id, exc_info=True)
        raise JobQueuedAnyway(job.id) from error
    try:
        thread_id = await interaction.client.publisher.open_views(job, receipt.place)
    except discord.Forbidden:
        log.warning("job %s: no permission to post in channel %s", job.id, job.channel_id)
        text = receipt_text(receipt, None) + (
            f"\nI may not post in <#{job.channel_id}>, so I cannot show its progress there. The job runs "
            f"anyway: see it with `/job id:{job.id}`. A host can give me Send Messages, Create Public Threads "
            "and Attach Files there.")
    except Exception:
        log.warning("job %s: could not open its thread", job.id, exc_info=True)
        text = receipt_text(receipt, None) + (
            f"\nDiscord would not show its progress yet; see it with `/job id:{job.id}`.")
    else:
        text = receipt_text(receipt, thread_id)
    try:
        await interaction.edit_original_response(content=fit(text))
    except discord.HTTPException:  # the receipt already says that the job is queued
        log.warning("job %s: could not add its thread to the receipt", job.id, exc_info=True)


class AnsweringButton:
    """A button whose every failure is answered as a command's is (mixed into DynamicItem subclasses)."""

    async def callback(self, interaction: discord.Interaction[Easel]) -> None:
        from bot.client import answer_failure  # the bot module imports this one

        try:
            await self.act(interaction)
        except Exception as error:
            await answer_failure(interaction, error)

    async def act(self, interaction: discord.Interaction[Easel]) -> None:
        raise NotImplementedError


class JobButton(AnsweringButton, discord.ui.DynamicItem[discord.ui.Button],
                template=r"easel:(?P<action>[a-z]+):(?P<job_id>[0-9]+)"):
    """A button under a job, `easel:<action>:<job id>`; each subclass handles one action with its own template."""

    action = ""
    label = ""
    style = discord.ButtonStyle.secondary
    emoji: str | None = None

    def __init__(self, job_id: int) -> None:
        super().__init__(discord.ui.Button(
            label=self.label, style=self.style, emoji=self.emoji, custom_id=f"easel:{self.action}:{job_id}",
        ))
        self.job_id = job_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: Any) -> JobButton:
        return cls(int(match["job_id"]))


class CancelButton(JobButton, template=r"easel:cancel:(?P<job_id>[0-9]+)"):
    action, label, style, emoji = "cancel", "Cancel", discord.ButtonStyle.danger, "✖️"

    async def act(self, interaction: discord.Interaction[Easel]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        bot = interaction.client
        _, message = await bot.jobs.cancel(self.job_id, interaction.user.id, await host_guild(interaction))
        await interaction.followup.send(message, ephemeral=True)


class RerollButton(JobButton, template=r"easel:reroll:(?P<job_id>[0-9]+)"):
    action, label, emoji = "reroll", "Re-roll", "🎲"

    async def act(self, interaction: discord.Interaction[Easel]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        bot = interaction.client
        await answer_with_receipt(interaction, await bot.jobs.reroll(self.job_id, await request_from(interaction)))


class ContinueButton(JobButton, template=r"easel:continue:(?P<job_id>[0-9]+)"):
    action, label, emoji = "continue", "Continue", "⏩"

    async def act(self, interaction: discord.Interaction[Easel]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        bot = interaction.client
        receipt = await bot.jobs.continue_from(self.job_id, await request_from(interaction))
        await answer_with_receipt(interaction, receipt)


class RemixModal(discord.ui.Modal, title="Remix"):
    """Edit the prompt and options of a job; a modal must be the first response to the button."""

    def __init__(self, job_id: int, prompt: str | None, flags: str) -> None:
        super().__init__(title=f"Remix job #{job_id}")
        self.job_id = job_id
        self.prompt_input: discord.ui.TextInput | None = None
        if prompt is not None:
            self.prompt_input = discord.ui.TextInput(
                label="Prompt", custom_id="prompt", default=prompt[:1000], max_length=1000,
                style=discord.TextStyle.paragraph,
            )
            self.add_item(self.prompt_input)
        self.flags_input = discord.ui.TextInput(
            label="Options", custom_id="options", default=flags[:400], required=False, max_length=400,
            placeholder="--steps 200 --size 384 --seed 7",
        )
        self.add_item(self.flags_input)

    async def on_submit(self, interaction: discord.Interaction[Easel]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        bot = interaction.client
        text = " ".join(part for part in (self.prompt_input and self.prompt_input.value, self.flags_input.value)
                        if part)
        receipt = await bot.jobs.remix(self.job_id, await request_from(interaction, text=text or None))
        await answer_with_receipt(interaction, receipt)

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:
        from bot.client import answer_failure

        await answer_failure(interaction, error)


def remix_flags(config: dict[str, Any]) -> str:
    """The options a remix starts from: a /compare's `what` and `values` first, then every number."""
    texts = [f"--{name} {shlex.quote(config[name])}" for name in ("what", "values") if config.get(name) is not None]
    numbers = [f"--{name.replace('_', '-')} {value}" for name, value in config.items()
               if isinstance(value, int | float) and not isinstance(value, bool)]
    return " ".join(texts + numbers)


class RemixButton(JobButton, template=r"easel:remix:(?P<job_id>[0-9]+)"):
    action, label, emoji = "remix", "Remix", "🎛️"

    async def act(self, interaction: discord.Interaction[Easel]) -> None:
        job = await interaction.client.jobs.visible_job(self.job_id, interaction.user.id, interaction.guild_id)
        config = job.spec["config"]
        await interaction.response.send_modal(RemixModal(job.id, config.get("prompt"), remix_flags(config)))


class ParametersButton(JobButton, template=r"easel:params:(?P<job_id>[0-9]+)"):
    action, label, emoji = "params", "Parameters", "📋"

    async def act(self, interaction: discord.Interaction[Easel]) -> None:
        job = await interaction.client.jobs.visible_job(self.job_id, interaction.user.id, interaction.guild_id)
        await interaction.response.send_message(parameters_text(job), ephemeral=True)


class RunRecipeButton(AnsweringButton, discord.ui.DynamicItem[discord.ui.Button], template=r"easel:recipe:run"):
    """Runs the recipe of the PNG attached to the message it is on; the PNG is read again when pressed,
    so the button needs no state and works after a restart."""

    def __init__(self) -> None:
        super().__init__(discord.ui.Button(label="Run it again", style=discord.ButtonStyle.primary, emoji="🔁",
                                           custom_id="easel:recipe:run"))

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: Any) -> RunRecipeButton:
        return cls()

    async def act(self, interaction: discord.Interaction[Easel]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        message = interaction.message
        attachment = message.attachments[0] if message is not None and message.attachments else None
        if attachment is None:
            raise UserFacingError("The recipe's PNG is no longer on this message; use /recipe again.")
        recipe, _ = await read_recipe_attachment(attachment, interaction.client.settings.max_upload_bytes)
        receipt = await interaction.client.jobs.run_recipe(recipe.spec, recipe.job_id, await request_from(interaction))
        await answer_with_receipt(interaction, receipt)


def recipe_view() -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(RunRecipeButton())
    return view


BUTTONS: dict[str, type[JobButton]] = {
    button.action: button for button in (CancelButton, RerollButton, ContinueButton, RemixButton, ParametersButton)
}


def status_view(job_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id))
    return view


def result_view(job_id: int, technique: str) -> discord.ui.View:
    from bot.art.techniques import GENERATOR_TECHNIQUES  # imports torch, which the bot has loaded by now

    view = discord.ui.View(timeout=None)
    if technique not in GENERATOR_TECHNIQUES:  # a model's jobs are asked for again with /sample or /walk
        view.add_item(RerollButton(job_id))
        if technique in CONTINUE_FROM_FIELD:
            view.add_item(ContinueButton(job_id))
        view.add_item(RemixButton(job_id))
    view.add_item(ParametersButton(job_id))
    return view
