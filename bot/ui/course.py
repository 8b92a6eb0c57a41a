"""How the course looks on Discord: lesson embeds, submission posts, the "Try it" and review buttons.

Buttons carry what they act on in their custom_id (`easel:try:<exercise>`, `easel:approve:<submission>`),
so they work after a restart; each checks again who pressed it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import discord

from bot.course.service import NOT_STARTED, LessonProgress, LessonView, ReviewOutcome, SubmissionView
from bot.errors import UserFacingError
from bot.jobs.spec import JobSpec
from bot.ui.checks import is_host
from bot.ui.fit import fit, fit_embed
from bot.ui.publisher import ping_only
from bot.ui.views import AnsweringButton, answer_with_receipt, request_from
from models import SubmissionStatus

if TYPE_CHECKING:
    from bot.client import Easel

log = logging.getLogger(__name__)

LESSON_COLOUR = discord.Colour.teal()
STATUS_MARKS = {NOT_STARTED: "▫️", "submitted": "⏳", "approved": "✅", "revise": "✏️"}
LINK_NAMES = {"video": "Video", "notebook": "Notebook", "reading": "Reading"}


def lesson_embed(view: LessonView) -> discord.Embed:
    lesson = view.lesson
    embed = discord.Embed(title=f"Lesson {lesson.number} · {lesson.title}", description=lesson.summary,
                          colour=LESSON_COLOUR)
    for number, exercise in enumerate(view.exercises, start=1):
        embed.add_field(name=f"{number}. {exercise.title} ({exercise.technique})",
                        value=f"{exercise.brief}\n*Submit:* {exercise.submit_hint}\n`/submit exercise:{exercise.id}`",
                        inline=False)
    links = " · ".join(f"[{LINK_NAMES.get(name, name.title())}]({url})" for name, url in view.lesson.links.items())
    if links:
        embed.add_field(name="Links", value=links, inline=False)
    return fit_embed(embed)


def lesson_view(view: LessonView) -> discord.ui.View:
    """One "Try it" button per exercise (at most 25, Discord's limit)."""
    buttons = discord.ui.View(timeout=None)
    for number, exercise in enumerate(view.exercises[:25], start=1):
        buttons.add_item(TryButton(exercise.id, label=fit(f"Try {number}: {exercise.title}", 80)))
    return buttons


def lesson_list_text(views: list[LessonView]) -> str:
    if not views:
        return "The course has no lessons yet. A host can add lesson files and run `python -m bot course sync`."
    lines = [f"**{view.lesson.number}. {view.lesson.title}** ({len(view.exercises)} exercises): {view.lesson.summary}"
             for view in views]
    lines.append("Read one with `/lesson show number`.")
    return fit("\n".join(lines))


def progress_text(progress: list[LessonProgress], whose: str) -> str:
    lines = [f"**Progress of {whose}**"]
    for lesson_progress in progress:
        lines.append(f"__Lesson {lesson_progress.lesson.number}: {lesson_progress.lesson.title}__")
        lines.extend(f"{STATUS_MARKS.get(item.status, '')} {item.exercise.title}: {item.status}"
                     for item in lesson_progress.exercises)
    return fit("\n".join(lines))


def submission_text(view: SubmissionView, *, author_id: int) -> str:
    """The post of a submission in the lesson's thread (user text in it never pings: the client allows none)."""
    submission = view.submission
    lines = [f"<@{author_id}> submitted **{view.exercise.title}** (lesson {view.lesson.number}) · #{submission.id}"]
    if submission.note:
        lines.append("> " + submission.note.replace("\n", "\n> "))
    if submission.recipe is not None:
        lines.append(f"Made with job #{submission.job_id}: `{JobSpec.from_dict(submission.recipe).describe()}`")
        lines.append(f"See its recipe and run it yourself: `/job id:{submission.job_id}`")
    return fit("\n".join(lines))


def submission_file(view: SubmissionView) -> discord.File:
    assert view.submission.image_path is not None
    return discord.File(view.submission.image_path, filename=f"submission-{view.submission.id}.webp")


def review_embed(view: SubmissionView) -> discord.Embed:
    submission = view.submission
    embed = discord.Embed(title=f"#{submission.id} · {view.exercise.title} (lesson {view.lesson.number})",
                          description=submission_text(view, author_id=submission.user_id), colour=LESSON_COLOUR,
                          timestamp=submission.created_at)
    embed.set_image(url=f"attachment://submission-{submission.id}.webp")
    return fit_embed(embed)


def review_buttons(views: list[SubmissionView]) -> discord.ui.View:
    buttons = discord.ui.View(timeout=None)
    for row, view in enumerate(views[:5]):
        buttons.add_item(ApproveButton(view.submission.id, row=row))
        buttons.add_item(ReviseButton(view.submission.id, row=row))
    return buttons


async def post_submission(bot: Easel, view: SubmissionView, fallback_channel_id: int) -> discord.Message | None:
    """Posts the submission in its lesson's thread (else where it was submitted) and records the post."""
    channel_id = view.lesson_thread_id or fallback_channel_id
    try:
        message = await bot.messageable(channel_id).send(submission_text(view, author_id=view.submission.user_id),
                                                         file=await asyncio.to_thread(submission_file, view))
    except discord.HTTPException:
        log.warning("submission %s: could not post it in channel %s", view.submission.id, channel_id, exc_info=True)
        return None
    await bot.course.record_post(view.submission.id, channel_id, message.id)
    return message


async def tell_student(bot: Easel, outcome: ReviewOutcome) -> str | None:
    """Tells the student about a review by DM; where their DMs are closed, by a mention in the lesson's thread.

    Returns how they were told ("dm", "thread"), or None when neither worked.
    """
    view = outcome.submission
    submission = view.submission
    if outcome.review.decision == SubmissionStatus.APPROVED:
        text = f"Your submission #{submission.id} for **{view.exercise.title}** (lesson {view.lesson.number}) " \
               "was approved. Well done!"
    else:
        text = (f"A host asked you to revise submission #{submission.id} for **{view.exercise.title}** "
                f"(lesson {view.lesson.number}). Try again and submit with /submit.")
    if outcome.review.feedback:
        text += "\nFeedback:\n> " + outcome.review.feedback.replace("\n", "\n> ")
    text = fit(text)
    try:
        direct = await bot.create_dm(discord.Object(submission.user_id))
        await direct.send(text)
        told: str | None = "dm"
    except discord.HTTPException:
        told = await _mention_in_thread(bot, view, text)
    await bot.course.record_told(outcome.review.id, told)
    return told


async def _mention_in_thread(bot: Easel, view: SubmissionView, text: str) -> str | None:
    channel_id = view.lesson_thread_id or view.submission.posted_channel_id
    if channel_id is None:
        return None
    try:
        await bot.messageable(channel_id).send(fit(f"<@{view.submission.user_id}> {text}"),
                                               allowed_mentions=ping_only(view.submission.user_id))
    except discord.HTTPException:
        log.warning("submission %s: could not tell its author about the review", view.submission.id, exc_info=True)
        return None
    return "thread"


class TryButton(AnsweringButton, discord.ui.DynamicItem[discord.ui.Button],
                template=r"easel:try:(?P<exercise_id>[a-z0-9-]{1,40})"):
    """Queues an exercise's preset as the presser's own job."""

    def __init__(self, exercise_id: str, label: str = "Try it") -> None:
        super().__init__(discord.ui.Button(label=label, style=discord.ButtonStyle.primary, emoji="🧪",
                                           custom_id=f"easel:try:{exercise_id}"))
        self.exercise_id = exercise_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match: Any) -> TryButton:
        return cls(match["exercise_id"], label=item.label or "Try it")

    async def act(self, interaction: discord.Interaction[Easel]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        request = await request_from(interaction)
        await answer_with_receipt(interaction, await interaction.client.course.try_exercise(self.exercise_id, request))


class ReviewButton(AnsweringButton, discord.ui.DynamicItem[discord.ui.Button],
                   template=r"easel:review:(?P<submission_id>[0-9]+)"):
    """A host's decision on a submission; anyone else is refused, privately."""

    action = ""
    label = ""
    style = discord.ButtonStyle.secondary

    def __init__(self, submission_id: int, row: int | None = None) -> None:
        super().__init__(discord.ui.Button(label=f"{self.label} #{submission_id}", style=self.style, row=row,
                                           custom_id=f"easel:{self.action}:{submission_id}"))
        self.submission_id = submission_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: Any) -> ReviewButton:
        return cls(int(match["submission_id"]))



async def reviewing_host_guild(interaction: discord.Interaction[Easel]) -> int:
    """The guild where the person reviewing is a host; raises for anyone else. Checked on every button
    press and modal submit: anyone who has a button's or a modal's custom_id can use it."""
    if interaction.guild_id is None or not await is_host(interaction):
        raise UserFacingError("Only this server's hosts can review submissions.")
    return interaction.guild_id


async def decide(interaction: discord.Interaction[Easel], submission_id: int, decision: SubmissionStatus,
                 feedback: str | None = None) -> None:
    """A host's review: recorded, the student told, and the host told how they were told."""
    guild_id = await reviewing_host_guild(interaction)
    await interaction.response.defer(ephemeral=True, thinking=True)
    outcome = await interaction.client.course.review(submission_id, guild_id, interaction.user.id, decision, feedback)
    told = await tell_student(interaction.client, outcome)
    await interaction.followup.send(review_done_text(outcome, told), ephemeral=True)


class ApproveButton(ReviewButton, template=r"easel:approve:(?P<submission_id>[0-9]+)"):
    action, label, style = "approve", "Approve", discord.ButtonStyle.success

    async def act(self, interaction: discord.Interaction[Easel]) -> None:
        await decide(interaction, self.submission_id, SubmissionStatus.APPROVED)


class ReviseButton(ReviewButton, template=r"easel:revise:(?P<submission_id>[0-9]+)"):
    action, label, style = "revise", "Ask to revise", discord.ButtonStyle.secondary

    async def act(self, interaction: discord.Interaction[Easel]) -> None:
        await reviewing_host_guild(interaction)
        await interaction.response.send_modal(FeedbackModal(self.submission_id))


class FeedbackModal(discord.ui.Modal, title="Ask for a revision"):
    def __init__(self, submission_id: int) -> None:
        super().__init__(title=f"Ask to revise #{submission_id}")
        self.submission_id = submission_id
        self.feedback = discord.ui.TextInput(label="Feedback for the student", style=discord.TextStyle.paragraph,
                                             max_length=1000, custom_id="feedback",
                                             placeholder="What to try next, and why")
        self.add_item(self.feedback)

    async def on_submit(self, interaction: discord.Interaction[Easel]) -> None:
        await decide(interaction, self.submission_id, SubmissionStatus.REVISE, self.feedback.value)

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:
        from bot.client import answer_failure

        await answer_failure(interaction, error)


def review_done_text(outcome: ReviewOutcome, told: str | None) -> str:
    decision = "Approved" if outcome.review.decision == SubmissionStatus.APPROVED else "Asked for a revision of"
    how = {"dm": "by DM", "thread": "with a mention in the lesson's thread"}.get(told or "")
    student = f"<@{outcome.submission.submission.user_id}>"
    tail = f"{student} was told {how}." if how else f"I could not reach {student}; tell them yourself."
    return f"{decision} submission #{outcome.submission.submission.id}. {tail}"


class ForgetButton(AnsweringButton, discord.ui.DynamicItem[discord.ui.Button],
                   template=r"easel:forget:(?P<user_id>[0-9]+)"):
    """The confirmation of /forget-me; only the person it was offered to may press it."""

    def __init__(self, user_id: int) -> None:
        super().__init__(discord.ui.Button(label="Delete everything of mine", style=discord.ButtonStyle.danger,
                                           custom_id=f"easel:forget:{user_id}"))
        self.user_id = user_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: Any) -> ForgetButton:
        return cls(int(match["user_id"]))

    async def act(self, interaction: discord.Interaction[Easel]) -> None:
        if interaction.user.id != self.user_id:
            raise UserFacingError("This button deletes someone else's data; use /forget-me for your own.")
        await interaction.response.defer(ephemeral=True, thinking=True)
        bot = interaction.client
        report = await bot.forget(self.user_id)
        await interaction.followup.send(fit(report.summary()), ephemeral=True)


COURSE_BUTTONS: tuple[type[discord.ui.DynamicItem[discord.ui.Button]], ...] = (
    TryButton, ApproveButton, ReviseButton, ForgetButton)
