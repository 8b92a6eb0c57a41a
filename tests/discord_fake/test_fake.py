"""Tests of the fake itself: a tiny real discord.py bot connects to it; we check what went over the wire."""

from __future__ import annotations

import asyncio
import io
import time

import aiohttp
import discord
import pytest
import pytest_asyncio
from discord import app_commands
from discord.ext import commands

from bot.endpoints import configure_discord_endpoints
from tests.discord_fake import FakeDiscord

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
READY_TIMEOUT = 5.0


class AgainButton(discord.ui.View):
    def __init__(self, pressed: list[discord.Interaction]) -> None:
        super().__init__(timeout=30)
        self.pressed = pressed

    @discord.ui.button(label="Again", custom_id="again")
    async def again(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.pressed.append(interaction)
        await interaction.response.edit_message(content="pressed", view=None)


class FeedbackModal(discord.ui.Modal, title="Feedback"):
    comment = discord.ui.TextInput(label="Comment", custom_id="comment")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"thanks for: {self.comment.value}")


class TinyBot(commands.Bot):
    """Just enough bot to exercise every part of the fake; not the Easel bot."""

    def __init__(self, guild_id: int) -> None:
        # One guild only, so no need for discord.py's default 2 s wait for more GUILD_CREATEs.
        super().__init__(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.05)
        self.guild = discord.Object(guild_id)
        self.button_presses: list[discord.Interaction] = []
        self.callback_errors: list[int] = []
        self._add_commands()

    async def setup_hook(self) -> None:
        await self.tree.sync(guild=self.guild)

    def _add_commands(self) -> None:
        @self.tree.command(guild=self.guild, description="Defer, then send a picture with a button")
        async def render(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True)
            picture = discord.File(io.BytesIO(PNG_BYTES), filename="art.png")
            await interaction.followup.send("rendered", file=picture, view=AgainButton(self.button_presses))

        @self.tree.command(guild=self.guild, description="Report the size of an image")
        async def measure(interaction: discord.Interaction, image: discord.Attachment) -> None:
            data = await image.read()
            await interaction.response.send_message(f"{image.filename}: {len(data)} bytes")

        @self.tree.command(guild=self.guild, description="Open a feedback form")
        async def feedback(interaction: discord.Interaction) -> None:
            await interaction.response.send_modal(FeedbackModal())

        @self.tree.command(guild=self.guild, description="Answer the same interaction twice")
        async def twice(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("first")
            try:
                await discord.InteractionResponse(interaction).send_message("second")
            except discord.HTTPException as error:
                self.callback_errors.append(error.code)

        workshop = app_commands.Group(name="workshop", description="Workshops")

        @workshop.command(description="Start a workshop thread")
        async def start(interaction: discord.Interaction, title: str) -> None:
            await interaction.response.send_message(f"Workshop: {title}")
            message = await interaction.original_response()
            try:
                thread = await message.create_thread(name=title)
            except discord.HTTPException as error:
                await interaction.followup.send(f"no thread: {error.code}")
                return
            await thread.send("welcome")

        self.tree.add_command(workshop, guild=self.guild)


@pytest_asyncio.fixture
async def fake():
    fake = FakeDiscord()
    await fake.start()
    configure_discord_endpoints(fake.api_base, fake.gateway_url)
    yield fake
    await fake.stop()


@pytest_asyncio.fixture
async def bot(fake: FakeDiscord):
    bot = TinyBot(fake.guild_id)
    runner = asyncio.create_task(bot.start(fake.token))
    ready = asyncio.create_task(bot.wait_until_ready())
    await asyncio.wait([runner, ready], timeout=READY_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
    if not ready.done():
        ready.cancel()
        await bot.close()
        raise RuntimeError(f"bot did not become ready: {runner.exception() if runner.done() else 'timeout'}")
    yield bot
    await bot.close()
    await runner


@pytest.mark.asyncio
async def test_bot_connects_and_registers_its_commands(fake: FakeDiscord, bot: TinyBot) -> None:
    guild = bot.get_guild(fake.guild_id)
    assert guild is not None and guild.get_channel(fake.channel_id).name == "workshop"
    assert guild.me.guild_permissions.create_public_threads
    assert bot.application_id == fake.application_id and bot.user.id == fake.bot_user_id

    registered = {command["name"]: command for command in fake.registered_commands(fake.guild_id)}
    assert set(registered) == {"render", "measure", "feedback", "twice", "workshop"}
    assert registered["workshop"]["options"][0]["type"] == discord.AppCommandOptionType.subcommand.value
    assert fake.registration_count == 1
    assert fake.unknown_routes == []


@pytest.mark.asyncio
async def test_wrong_token_is_refused(fake: FakeDiscord) -> None:
    headers = {"Authorization": "Bot nope"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{fake.api_base}/users/@me", headers=headers) as response,
    ):
        assert response.status == 401
        assert response.headers["Content-Type"] == "application/json"
    bot = TinyBot(fake.guild_id)
    with pytest.raises(discord.LoginFailure):
        await bot.login("nope")
    await bot.close()


@pytest.mark.asyncio
async def test_defer_then_followup_with_file_and_button(fake: FakeDiscord, bot: TinyBot) -> None:
    alice = fake.add_member("alice")
    interaction = await fake.send_command(alice, "render")

    deferred = await fake.wait_for_response(interaction)
    assert deferred.type == 5 and not deferred.ephemeral
    assert deferred.at - interaction.dispatched_at < 3.0

    await fake.wait_until(lambda: interaction.followups)
    picture = interaction.followups[0]
    assert picture.content == "rendered"
    assert picture.attachments == [("art.png", PNG_BYTES)]
    assert picture is interaction.original  # the first followup replaces the "thinking" message
    assert fake.messages(fake.channel_id) == [picture]

    press = await fake.press_button(alice, picture, "again")
    update = await fake.wait_for_response(press)
    assert update.type == 7
    assert bot.button_presses[0].type is discord.InteractionType.component
    assert bot.button_presses[0].user.id == alice.id
    assert picture.content == "pressed" and picture.components == [] and picture.edits == 1


@pytest.mark.asyncio
async def test_attachment_option_is_downloaded_from_the_fake(fake: FakeDiscord, bot: TinyBot) -> None:
    alice = fake.add_member("alice")
    upload = {"image": ("sketch.png", PNG_BYTES, "image/png")}
    interaction = await fake.send_command(alice, "measure", attachments=upload)

    reply = await fake.wait_for_response(interaction)
    assert reply.type == 4
    assert reply.data["content"] == f"sketch.png: {len(PNG_BYTES)} bytes"
    assert any(r.method == "GET" and r.path.startswith("/attachments/") for r in fake.requests)


@pytest.mark.asyncio
async def test_modal_submit_reaches_the_modal(fake: FakeDiscord, bot: TinyBot) -> None:
    alice = fake.add_member("alice")
    opened = await fake.wait_for_response(await fake.send_command(alice, "feedback"))
    assert opened.type == 9

    submitted = await fake.submit_modal(alice, opened.data["custom_id"], {"comment": "lovely colours"})
    reply = await fake.wait_for_response(submitted)
    assert reply.data["content"] == "thanks for: lovely colours"


@pytest.mark.asyncio
async def test_subcommand_creates_a_thread_from_the_reply(fake: FakeDiscord, bot: TinyBot) -> None:
    alice = fake.add_member("alice")
    interaction = await fake.send_command(alice, "workshop", {"title": "Skies"}, subcommand=["start"])

    await fake.wait_until(lambda: fake.threads)
    [thread] = fake.threads.values()
    assert thread.name == "Skies" and thread.parent_id == fake.channel_id
    assert thread.starter_message_id == interaction.original.id
    await fake.wait_until(lambda: fake.messages(thread.id))
    assert fake.messages(thread.id)[0].content == "welcome"


@pytest.mark.asyncio
async def test_failed_thread_creation_raises_with_the_discord_code(fake: FakeDiscord, bot: TinyBot) -> None:
    fake.fail_thread_creation()
    interaction = await fake.send_command(
        fake.add_member("alice"), "workshop", {"title": "Skies"}, subcommand=["start"]
    )

    await fake.wait_until(lambda: interaction.followups)
    assert interaction.followups[0].content == "no thread: 160006"
    assert fake.threads == {}


@pytest.mark.asyncio
async def test_rate_limited_request_is_retried(fake: FakeDiscord, bot: TinyBot) -> None:
    fake.rate_limit_next(2, route_contains="/messages", retry_after=0.05)
    started = time.monotonic()
    await bot.get_channel(fake.channel_id).send("hello")

    assert time.monotonic() - started >= 0.1
    statuses = [r.status for r in fake.requests if r.path == f"/channels/{fake.channel_id}/messages"]
    assert statuses == [429, 429, 200]
    assert [m.content for m in fake.messages(fake.channel_id)] == ["hello"]


@pytest.mark.asyncio
async def test_second_callback_is_rejected_as_already_acknowledged(fake: FakeDiscord, bot: TinyBot) -> None:
    interaction = await fake.send_command(fake.add_member("alice"), "twice")

    await fake.wait_until(lambda: bot.callback_errors)
    assert bot.callback_errors == [40060]
    assert [r.data["content"] for r in interaction.responses] == ["first"]


@pytest.mark.asyncio
async def test_unknown_routes_answer_404_and_are_recorded(fake: FakeDiscord, bot: TinyBot) -> None:
    with pytest.raises(discord.NotFound):
        await bot.http.request(discord.http.Route("GET", "/stickers/{sticker_id}", sticker_id=1))
    assert [(r.method, r.path) for r in fake.unknown_routes] == [("GET", "/stickers/1")]


@pytest.mark.asyncio
async def test_message_edit_keeps_listed_attachments_and_adds_new_files(
    fake: FakeDiscord, bot: TinyBot
) -> None:
    channel = bot.get_channel(fake.channel_id)
    sent = await channel.send(
        "v1", files=[discord.File(io.BytesIO(b"a"), "a.txt"), discord.File(io.BytesIO(b"b"), "b.txt")]
    )
    await sent.edit(content="v2", attachments=[sent.attachments[0], discord.File(io.BytesIO(b"c"), "c.txt")])

    stored = fake.get_message(sent.id)
    assert stored.content == "v2" and stored.edits == 1
    assert stored.attachments == [("a.txt", b"a"), ("c.txt", b"c")]
    assert stored.edit_history[0]["content"] == "v1"


@pytest.mark.asyncio
async def test_dropped_gateway_connection_is_resumed(fake: FakeDiscord, bot: TinyBot) -> None:
    await fake.drop_gateway_connections()
    await fake.wait_until(lambda: fake.gateway_handshakes == ["identify", "resume"], timeout=4.0)

    interaction = await fake.send_command(fake.add_member("alice"), "twice")
    assert (await fake.wait_for_response(interaction)).data["content"] == "first"
