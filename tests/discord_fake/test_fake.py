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
        self.release = asyncio.Event()  # the `hold` command answers once a test sets it
        self._add_commands()
        self._add_global_commands()

    async def setup_hook(self) -> None:
        await self.tree.sync(guild=self.guild)
        await self.tree.sync()

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

        @self.tree.command(guild=self.guild, description="Answer (or follow up a defer) once released")
        async def hold(interaction: discord.Interaction, defer: bool = False) -> None:
            if defer:
                await interaction.response.defer()
            await self.release.wait()
            try:
                if defer:
                    await interaction.followup.send("late")
                else:
                    await interaction.response.send_message("late")
            except discord.HTTPException as error:
                self.callback_errors.append(error.code)

        @self.tree.command(guild=self.guild, description="A private reply")
        async def secret(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("psst", ephemeral=True)

        @self.tree.command(guild=self.guild, description="Paint with parameters")
        @app_commands.choices(style=[app_commands.Choice(name=s, value=s) for s in ("oil", "ink")])
        async def paint(
            interaction: discord.Interaction,
            steps: app_commands.Range[int, 1, 50],
            style: str,
            title: app_commands.Range[str, 1, 10],
            scale: float = 1.0,
        ) -> None:
            await interaction.response.send_message(f"{steps} {style} {title} {scale}")

        @self.tree.command(guild=self.guild, description="Find a palette")
        async def palette(interaction: discord.Interaction, name: str) -> None:
            await interaction.response.send_message(name)

        @palette.autocomplete("name")
        async def palette_names(interaction: discord.Interaction, typed: str) -> list[app_commands.Choice[str]]:
            return [app_commands.Choice(name=f"{typed} {n}", value=f"{typed}-{n}") for n in (1, 2)]

    def _add_global_commands(self) -> None:
        @self.tree.command(description="Say hello, in any guild or a DM")
        async def hello(interaction: discord.Interaction) -> None:
            where = interaction.guild_id or "dm"
            await interaction.response.send_message(f"hello <@{interaction.user.id}> in {where}")

        @self.tree.command(description="Only in guilds")
        @app_commands.guild_only()
        async def local(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("here")


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
    assert set(registered) == {
        "render", "measure", "feedback", "twice", "workshop", "hold", "secret", "paint", "palette"
    }
    assert registered["workshop"]["options"][0]["type"] == discord.AppCommandOptionType.subcommand.value
    assert {command["name"] for command in fake.registered_commands()} == {"hello", "local"}
    assert fake.registration_count == 2
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


async def raw(bot: TinyBot, method: str, path: str, **kwargs: object) -> object:
    """A request straight to the fake, for bodies discord.py's own models would refuse to build."""
    return await bot.http.request(discord.http.Route(method, path), **kwargs)


# -- interaction deadlines ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_first_response_after_3_seconds_is_unknown_interaction(fake: FakeDiscord, bot: TinyBot) -> None:
    interaction = await fake.send_command(fake.add_member("alice"), "hold")
    fake.advance_clock(3.5)
    bot.release.set()

    await fake.wait_until(lambda: bot.callback_errors)
    assert bot.callback_errors == [10062] and interaction.responses == []
    [violation] = fake.violations
    assert violation.code == 10062 and "3 s" in violation.reason
    with pytest.raises(AssertionError, match="10062"):
        fake.assert_no_violations()


@pytest.mark.asyncio
async def test_the_interaction_token_expires_after_15_minutes(fake: FakeDiscord, bot: TinyBot) -> None:
    interaction = await fake.send_command(fake.add_member("alice"), "hold", {"defer": True})
    await fake.wait_for_response(interaction)
    fake.advance_clock(15 * 60 + 1)
    bot.release.set()

    await fake.wait_until(lambda: bot.callback_errors)
    assert bot.callback_errors == [50027]
    assert [(v.status, v.code) for v in fake.violations] == [(401, 50027)]


@pytest.mark.asyncio
async def test_autocomplete_is_answered_with_choices(fake: FakeDiscord, bot: TinyBot) -> None:
    interaction = await fake.autocomplete(fake.add_member("alice"), "palette", "name", "sea")
    reply = await fake.wait_for_response(interaction)
    assert reply.type == 8
    assert reply.data["choices"] == [{"name": "sea 1", "value": "sea-1"}, {"name": "sea 2", "value": "sea-2"}]
    assert fake.violations == []


# -- size limits --------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_oversized_messages_are_invalid_form_bodies(fake: FakeDiscord, bot: TinyBot) -> None:
    channel = bot.get_channel(fake.channel_id)
    with pytest.raises(discord.HTTPException) as too_long:
        await channel.send("x" * 2001)
    assert too_long.value.code == 50035 and "content" in too_long.value.text
    with pytest.raises(discord.HTTPException, match=r"embeds\.0\.description"):
        await channel.send(embed=discord.Embed(description="d" * 4097))
    with pytest.raises(discord.HTTPException, match="6000"):
        await channel.send(embeds=[discord.Embed(title="t", description="d" * 4000) for _ in range(2)])
    buttons = [{"type": 2, "style": 1, "label": "b", "custom_id": str(i)} for i in range(6)]
    too_wide = {"content": "hi", "components": [{"type": 1, "components": buttons}]}
    with pytest.raises(discord.HTTPException, match=r"components\.0\.components"):
        await raw(bot, "POST", f"/channels/{fake.channel_id}/messages", json=too_wide)
    await channel.send("x" * 2000, embeds=[discord.Embed(title="t" * 256, description="d" * 4096)])

    assert [v.code for v in fake.violations] == [50035] * 4
    assert [m.content for m in fake.messages(fake.channel_id)] == ["x" * 2000]


@pytest.mark.asyncio
async def test_a_file_over_the_upload_limit_is_413(fake: FakeDiscord, bot: TinyBot) -> None:
    interaction = await fake.send_command(fake.add_member("alice"), "hello")
    assert interaction.payload["attachment_size_limit"] == fake.guilds[fake.guild_id].upload_limit == 10 * 2**20
    fake.guilds[fake.guild_id].upload_limit = 1000
    with pytest.raises(discord.HTTPException) as refused:
        await bot.get_channel(fake.channel_id).send(file=discord.File(io.BytesIO(bytes(1001)), "big.bin"))
    assert refused.value.status == 413 and refused.value.code == 40005


@pytest.mark.asyncio
async def test_invalid_threads_modals_and_commands_are_refused(fake: FakeDiscord, bot: TinyBot) -> None:
    with pytest.raises(discord.HTTPException, match="name"):
        await bot.get_channel(fake.channel_id).create_thread(name="n" * 101, type=discord.ChannelType.public_thread)
    bad_command = {"name": "Paint", "description": "d" * 101, "type": 1}
    with pytest.raises(discord.HTTPException) as refused:
        await bot.http.bulk_upsert_guild_commands(fake.application_id, fake.guild_id, [bad_command])
    assert "0.name" in refused.value.text and "0.description" in refused.value.text
    assert {c["name"] for c in fake.registered_commands(fake.guild_id)} >= {"render"}  # nothing overwritten

    interaction = await fake.send_command(fake.add_member("alice"), "hold")
    modal = {"type": 9, "data": {"custom_id": "m", "title": "t" * 46, "components": [
        {"type": 1, "components": [{"type": 4, "custom_id": "c", "label": "Comment", "style": 1}]}
    ]}}
    path = "/interactions/{id}/{token}/callback"
    route = discord.http.Route("POST", path, id=interaction.id, token=interaction.token)
    with pytest.raises(discord.HTTPException, match=r"data\.title"):
        await bot.http.request(route, json=modal)
    assert [v.code for v in fake.violations] == [50035] * 3


# -- mentions -----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_pings_follow_allowed_mentions(fake: FakeDiscord, bot: TinyBot) -> None:
    alice, bob = fake.add_member("alice"), fake.add_member("bob")
    painters = fake.add_role("painters")
    channel = bot.get_channel(fake.channel_id)
    text = f"<@{alice.id}> <@!{bob.id}> <@&{painters}> @everyone"

    everything = await channel.send(text)  # no allowed_mentions at all: Discord pings all of it
    just_alice = discord.AllowedMentions(users=[alice], everyone=False, roles=False)
    only_alice = await channel.send(text, allowed_mentions=just_alice)
    nobody = await channel.send(text, allowed_mentions=discord.AllowedMentions.none())
    reply = await only_alice.reply("thanks", allowed_mentions=discord.AllowedMentions.none())
    await nobody.edit(content=text, allowed_mentions=discord.AllowedMentions.all())

    stored = [fake.get_message(m.id) for m in (everything, only_alice, nobody, reply)]
    assert [(m.pinged_users, m.pinged_roles, m.pinged_everyone) for m in stored] == [
        ([alice.id, bob.id], [painters], True),
        ([alice.id], [], False),
        ([], [], False),
        ([], [], False),  # replying to the bot's own message pings no one; edits never ping
    ]
    assert fake.pings_of(alice) == [stored[0], stored[1]] and fake.pings_of(bob.id) == [stored[0]]


@pytest.mark.asyncio
async def test_a_reply_pings_the_replied_user_only_when_allowed(fake: FakeDiscord, bot: TinyBot) -> None:
    alice = fake.add_member("alice")
    said = fake.create_message(fake.channel_id, {"content": "hi"}, [], author=alice)
    message = bot.get_channel(fake.channel_id).get_partial_message(said.id)
    quiet = await message.reply("hello", mention_author=False)
    loud = await message.reply("hello")
    assert fake.get_message(quiet.id).pinged_users == [] and fake.get_message(loud.id).pinged_users == [alice.id]


# -- edit limits --------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_edits_are_limited_per_channel(fake: FakeDiscord, bot: TinyBot) -> None:
    message = await bot.get_channel(fake.channel_id).send("v0")
    for version in range(1, 6):
        await message.edit(content=f"v{version}")
    fake.advance_clock(5.0)  # the window moves on without sleeping
    await message.edit(content="v6")
    assert fake.violations == [] and fake.get_message(message.id).content == "v6"

    fake.edit_limits.per_seconds = 60.0
    bot.http.max_ratelimit_timeout = 30.0  # what the bot configures so that long waits raise instead
    for version in range(7, 11):
        await message.edit(content=f"v{version}")
    with pytest.raises(discord.RateLimited) as limited:
        await message.edit(content="v11")
    assert 30 < limited.value.retry_after <= 60
    [violation] = fake.violations
    assert violation.status == 429 and violation.method == "PATCH"


@pytest.mark.asyncio
async def test_messages_older_than_an_hour_take_few_edits(fake: FakeDiscord, bot: TinyBot) -> None:
    message = await bot.get_channel(fake.channel_id).send("old")
    fake.age_message(fake.get_message(message.id), 3601)
    for version in range(3):
        await message.edit(content=f"v{version}")
    with pytest.raises(discord.HTTPException) as refused:
        await message.edit(content="one too many")
    assert refused.value.status == 429 and refused.value.code == 30046


@pytest.mark.asyncio
async def test_injected_rate_limits_are_not_violations(fake: FakeDiscord, bot: TinyBot) -> None:
    fake.rate_limit_next(1, route_contains="/messages", retry_after=0.01)
    await bot.get_channel(fake.channel_id).send("hello")
    fake.assert_no_violations()


# -- guilds and DMs -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_second_guild_with_a_shared_member(fake: FakeDiscord, bot: TinyBot) -> None:
    second = fake.add_guild("Second")
    await fake.wait_until(lambda: bot.get_guild(second) is not None)
    guild = bot.get_guild(second)
    workshop = fake.guilds[second].channel_id
    assert guild.get_channel(workshop).name == "workshop" and guild.owner_id == fake.guilds[second].owner.id
    extra = fake.add_channel("gallery", guild_id=second)
    await fake.wait_until(lambda: guild.get_channel(extra) is not None)

    alice = fake.add_member("alice")
    fake.add_to_guild(alice, second)
    interaction = await fake.send_command(alice, "hello", channel_id=workshop)
    reply = await fake.wait_for_response(interaction)
    assert interaction.payload["guild_id"] == str(second)
    assert reply.data["content"] == f"hello <@{alice.id}> in {second}"
    assert fake.render_message(interaction.original)["guild_id"] == str(second)
    with pytest.raises(LookupError):  # guild commands of the default guild are not offered in the second
        await fake.send_command(alice, "render", channel_id=workshop)
    assert (await guild.fetch_member(alice.id)).id == alice.id
    assert fake.violations == []


@pytest.mark.asyncio
async def test_commands_and_posts_in_a_dm(fake: FakeDiscord, bot: TinyBot) -> None:
    alice = fake.add_member("alice")
    dm = fake.dm_channel(alice)
    interaction = await fake.send_command(alice, "hello", channel_id=dm)
    reply = await fake.wait_for_response(interaction)
    assert reply.data["content"] == f"hello <@{alice.id}> in dm"
    assert "member" not in interaction.payload and "guild_id" not in interaction.payload
    assert interaction.payload["user"]["id"] == str(alice.id) and interaction.payload["context"] == 1
    with pytest.raises(LookupError):
        await fake.send_command(alice, "local", channel_id=dm)

    channel = await bot.create_dm(discord.Object(alice.id))
    assert channel.id == dm
    sent = await channel.send("a private note")
    assert "guild_id" not in fake.render_message(fake.get_message(sent.id))
    with pytest.raises(discord.HTTPException) as refused:
        await raw(bot, "POST", f"/channels/{dm}/threads", json={"name": "nope", "type": 11})
    assert refused.value.code == 50024


# -- ephemeral messages and permissions -----------------------------------------------------------------


@pytest.mark.asyncio
async def test_ephemeral_messages_are_not_reachable_through_the_channel(fake: FakeDiscord, bot: TinyBot) -> None:
    interaction = await fake.send_command(fake.add_member("alice"), "secret")
    await fake.wait_until(lambda: interaction.original is not None)
    with pytest.raises(discord.NotFound):
        await bot.get_channel(fake.channel_id).fetch_message(interaction.original.id)
    assert [(v.status, v.code) for v in fake.violations] == [(404, 10008)]


@pytest.mark.asyncio
async def test_denied_permissions_refuse_posts_files_embeds_and_threads(fake: FakeDiscord, bot: TinyBot) -> None:
    channel = bot.get_channel(fake.channel_id)
    fake.deny_bot_permission(fake.channel_id, "attach_files", "embed_links", "create_public_threads")
    interaction = await fake.send_command(fake.add_member("alice"), "hello")
    permissions = discord.Permissions(int(interaction.payload["app_permissions"]))
    assert permissions.send_messages and not permissions.attach_files and not permissions.embed_links

    with pytest.raises(discord.Forbidden):
        await channel.send(file=discord.File(io.BytesIO(b"a"), "a.txt"))
    with pytest.raises(discord.Forbidden):
        await channel.send(embed=discord.Embed(title="t"))
    with pytest.raises(discord.Forbidden):
        await (await channel.send("plain")).create_thread(name="t")
    fake.deny_bot_posting(fake.channel_id)
    with pytest.raises(discord.Forbidden):
        await channel.send("plain")

    fake.allow_bot_permission(fake.channel_id, "send_messages", "attach_files")
    await channel.send(file=discord.File(io.BytesIO(b"a"), "a.txt"))
    assert fake.violations == []  # the test took the permissions away: not the bot's fault


# -- what a client lets users send ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_send_command_refuses_options_a_client_would_not_send(fake: FakeDiscord, bot: TinyBot) -> None:
    alice = fake.add_member("alice")
    good = {"steps": 50, "style": "ink", "title": "Sky"}
    for bad in ({"steps": 51}, {"steps": "3"}, {"style": "watercolour"}, {"title": "t" * 11}, {"scale": "big"},
                {"colour": "red"}, {"steps": True}):
        with pytest.raises(ValueError):
            await fake.send_command(alice, "paint", good | bad)
    interaction = await fake.send_command(alice, "paint", good | {"scale": 2})
    assert (await fake.wait_for_response(interaction)).data["content"] == "50 ink Sky 2.0"
