"""The course: /lesson, /submit, /review, /progress, /gallery, /forget-me.

Thin: check who may do it, defer, call the course service, render with `bot.ui.course`.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.art.contact_sheet import contact_sheets
from bot.errors import UserFacingError
from bot.timestamps import discord_timestamp
from bot.ui.attachments import read_attachment
from bot.ui.checks import host_only, is_host
from bot.ui.course import (
    ForgetButton,
    lesson_embed,
    lesson_list_text,
    lesson_view,
    post_submission,
    progress_text,
    review_buttons,
    review_embed,
    submission_file,
)
from bot.ui.fit import THREAD_NAME, chunks, fit

if TYPE_CHECKING:
    from bot.client import Easel

FILES_PER_MESSAGE = 10
FORGET_TEXT = (
    "This deletes everything Easel keeps that names you, in every server: your jobs and their images, your course "
    "submissions and their reviews, challenge entries and votes, refused prompts logged by moderation, and your "
    "member records. Reviews you wrote, and lessons and challenges you opened, stay without your name. It cannot be "
    "undone."
)


class Course(commands.Cog):
    lesson = app_commands.Group(name="lesson", description="The course: read lessons and try their exercises",
                                guild_only=True)
    review = app_commands.Group(name="review", description="Hosts: review students' submissions", guild_only=True,
                                default_permissions=discord.Permissions(manage_guild=True))
    progress = app_commands.Group(name="progress", description="Course progress", guild_only=True)

    def __init__(self, bot: Easel) -> None:
        self.bot = bot

    # --- lessons ---------------------------------------------------------------------------------------

    @lesson.command(name="list", description="The course's lessons")
    async def lesson_list(self, interaction: discord.Interaction[Easel]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await interaction.followup.send(lesson_list_text(await self.bot.course.lessons()), ephemeral=True)

    @lesson.command(name="show", description="A lesson's summary, exercises and links, with a Try it button each")
    @app_commands.describe(number="The lesson's number (see /lesson list)")
    async def lesson_show(self, interaction: discord.Interaction[Easel], number: int) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        view = await self.bot.course.lesson(number)
        await interaction.followup.send(embed=lesson_embed(view), view=lesson_view(view), ephemeral=True)

    @lesson.command(name="start", description="Hosts: open a lesson in the workshop channel, with its own thread")
    @app_commands.describe(number="The lesson's number (see /lesson list)")
    @host_only()
    async def lesson_start(self, interaction: discord.Interaction[Easel], number: int) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        config = await self.bot.guild_service.get(interaction.guild_id)
        channel_id = config.workshop_channel_id or interaction.channel_id
        assert channel_id is not None
        run, view = await self.bot.course.start_lesson(interaction.guild_id, number, interaction.user.id, channel_id)
        channel = self.bot.get_channel(channel_id) or await self.bot.fetch_channel(channel_id)
        announcement = await channel.send(  # type: ignore[union-attr]
            f"Lesson {view.lesson.number} starts now: **{view.lesson.title}**. Read it in the thread below, "
            "press Try it to run an exercise, and hand in your work with /submit.",
            embed=lesson_embed(view), view=lesson_view(view))
        thread = await announcement.create_thread(name=fit(f"Lesson {view.lesson.number}: {view.lesson.title}",
                                                           THREAD_NAME), auto_archive_duration=1440)
        await self.bot.course.record_run_posts(run.id, thread_id=thread.id, announcement_message_id=announcement.id)
        for piece in chunks(view.lesson.body):
            await thread.send(piece)
        await thread.send("Jobs started in this thread use this lesson's settings unless you give your own.")
        await interaction.followup.send(f"Lesson {view.lesson.number} is open in {thread.mention}.", ephemeral=True)

    @lesson.command(name="end", description="Hosts: close the open lesson")
    @host_only()
    async def lesson_end(self, interaction: discord.Interaction[Easel]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        run, lesson = await self.bot.course.end_lesson(interaction.guild_id)
        if run.thread_id is not None:
            with contextlib.suppress(discord.HTTPException):  # the lesson is closed whether or not its thread hears
                await self.bot.messageable(run.thread_id).send(
                    f"Lesson {lesson.number} is closed. Thank you all! You can still submit with /submit.")
        await interaction.followup.send(f"Closed lesson {lesson.number}.", ephemeral=True)

    # --- submissions -----------------------------------------------------------------------------------

    @app_commands.command(name="submit", description="Hand in your work for an exercise: an image or one of your jobs")
    @app_commands.describe(exercise="Which exercise (start typing its lesson or title)", image="Your image",
                           job="The number of one of your finished jobs", note="A few words about what you tried")
    @app_commands.guild_only()
    async def submit(self, interaction: discord.Interaction[Easel], exercise: str,
                     image: discord.Attachment | None = None, job: int | None = None,
                     note: app_commands.Range[str, 1, 500] | None = None) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None and interaction.channel_id is not None
        data = await read_attachment("image", image, self.bot.settings.max_upload_bytes) if image else None
        view = await self.bot.course.submit(
            guild_id=interaction.guild_id, user_id=interaction.user.id, display_name=interaction.user.display_name,
            exercise_id=exercise, image=data, job_id=job, note=note)
        posted = await post_submission(self.bot, view, interaction.channel_id)
        where = f" It is posted in {posted.jump_url}." if posted else ""
        await interaction.followup.send(
            f"Submitted #{view.submission.id} for **{view.exercise.title}**.{where} A host will review it; "
            "/progress member shows where you stand.", ephemeral=True)

    @submit.autocomplete("exercise")
    async def exercise_choices(self, interaction: discord.Interaction[Easel],
                               current: str) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=fit(f"Lesson {lesson.number} · {exercise.title}", 100), value=exercise.id)
                for exercise, lesson in await self.bot.course.search_exercises(current)]

    # --- reviews ---------------------------------------------------------------------------------------

    @review.command(name="queue", description="Hosts: submissions waiting for a review, oldest first")
    @host_only()
    async def review_queue(self, interaction: discord.Interaction[Easel]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        views, total = await self.bot.course.pending(interaction.guild_id)
        if not views:
            await interaction.followup.send("No submissions are waiting for a review.", ephemeral=True)
            return
        files = await asyncio.to_thread(lambda: [submission_file(view) for view in views if view.submission.image_path])
        more = f" Showing the oldest {len(views)}; review them to see the rest." if total > len(views) else ""
        await interaction.followup.send(f"{total} submission{'s' if total != 1 else ''} waiting.{more}",
                                        embeds=[review_embed(view) for view in views], files=files,
                                        view=review_buttons(views), ephemeral=True)

    @review.command(name="remove", description="Hosts: remove one submission and its image")
    @app_commands.describe(submission="The submission's number (#N in its post)")
    @host_only()
    async def review_remove(self, interaction: discord.Interaction[Easel], submission: int) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        view = await self.bot.course.remove_submission(submission, interaction.guild_id)
        await self.bot.delete_posts([(view.submission.posted_channel_id, view.submission.posted_message_id)])
        await interaction.followup.send(f"Removed submission #{submission} ({view.exercise.title}).", ephemeral=True)

    # --- progress and galleries --------------------------------------------------------------------------

    @progress.command(name="member", description="Your progress per lesson and exercise (hosts: anyone's)")
    @app_commands.describe(member="Whose progress; hosts only for someone else")
    async def progress_member(self, interaction: discord.Interaction[Easel],
                              member: discord.Member | None = None) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        person = member or interaction.user
        if person.id != interaction.user.id and not await is_host(interaction):
            raise UserFacingError("Only hosts can see another member's progress. Leave `member` empty for yours.")
        progress = await self.bot.course.progress(interaction.guild_id, person.id)
        whose = "you" if person.id == interaction.user.id else person.mention
        await interaction.followup.send(progress_text(progress, whose), ephemeral=True)

    @progress.command(name="class", description="Hosts: per exercise, how many submitted, were approved and wait")
    @host_only()
    async def progress_class(self, interaction: discord.Interaction[Easel]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        lines = ["**Class overview** (submitted · approved · waiting · to revise)"]
        for item in await self.bot.course.class_overview(interaction.guild_id):
            line = (f"L{item.lesson.number} {item.exercise.title}: {item.submitted} · {item.approved} · "
                    f"{item.waiting} · {item.revise}")
            if item.longest_waiting is not None:
                user_id, since = item.longest_waiting
                line += f" · waiting longest: <@{user_id}> since {discord_timestamp(since, 'R')}"
            lines.append(line)
        await interaction.followup.send(fit("\n".join(lines)), ephemeral=True)

    @app_commands.command(name="gallery", description="A contact sheet of the latest submissions to a lesson")
    @app_commands.describe(lesson="The lesson's number", exercise="Only this exercise (optional)")
    @app_commands.guild_only()
    async def gallery(self, interaction: discord.Interaction[Easel], lesson: int, exercise: str | None = None) -> None:
        assert interaction.guild_id is not None
        # Read before the public defer, so "nothing yet" is answered privately.
        found, tiles = await self.bot.course.gallery(interaction.guild_id, lesson, exercise)
        if not tiles:
            raise UserFacingError(f"Nobody has submitted to lesson {lesson} yet. Be the first with /submit!")
        await interaction.response.defer(thinking=True)
        limit = min(interaction.filesize_limit, self.bot.settings.max_upload_bytes)
        sheets = await asyncio.to_thread(contact_sheets, tiles, max_bytes=limit,
                                         title=f"Lesson {found.number} · {found.title}", filename_prefix="gallery")
        files = [discord.File(io.BytesIO(sheet.data), filename=sheet.filename) for sheet in sheets]
        text = f"Lesson {found.number} · {found.title}: {len(tiles)} submission{'s' if len(tiles) != 1 else ''}."
        for start in range(0, len(files), FILES_PER_MESSAGE):
            await interaction.followup.send(text if start == 0 else "…", files=files[start:start + FILES_PER_MESSAGE])

    @gallery.autocomplete("exercise")
    async def gallery_exercises(self, interaction: discord.Interaction[Easel],
                                current: str) -> list[app_commands.Choice[str]]:
        return await self.exercise_choices(interaction, current)

    # --- privacy ---------------------------------------------------------------------------------------

    @app_commands.command(name="forget-me", description="Delete everything Easel keeps about you")
    async def forget_me(self, interaction: discord.Interaction[Easel]) -> None:
        confirm = discord.ui.View(timeout=None)
        confirm.add_item(ForgetButton(interaction.user.id))
        await interaction.response.send_message(FORGET_TEXT, view=confirm, ephemeral=True)


async def setup(bot: Easel) -> None:
    await bot.add_cog(Course(bot))
