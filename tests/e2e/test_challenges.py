"""Challenges end to end: the real bot against the fake Discord, with a clock the tests move (never slept through).

A host creates a challenge, members enter blind, the sweeper opens the vote and closes it, the leaderboard counts.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from models import Challenge, ChallengeEntry, ChallengePhase, ChallengeVote
from tests.clock import SATURDAY_NOON, Clock
from tests.discord_fake import FakeDiscord, FakeMessage
from tests.e2e.conftest import RunningBot, bot_settings
from tests.e2e.test_generation import FAST, HOST_PERMISSIONS, job_id_of, png, wait_for_status

START = SATURDAY_NOON


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def easel(fake: FakeDiscord, tmp_path: Path, clock: Clock):
    running = ClockedBot(bot_settings(fake, tmp_path / "data", **FAST), clock)
    yield running
    await running.stop()


class ClockedBot(RunningBot):
    def __init__(self, settings, clock: Clock) -> None:
        super().__init__(settings)
        self.clock = clock

    async def start(self, **options: object):
        return await super().start(clock=self.clock, **options)


async def create(fake: FakeDiscord, host, title: str = "A city that breathes", **options: object) -> FakeMessage:
    values: dict[str, object] = {"title": title, "theme": "Streets that inhale at dawn.",
                                 "entries_close": "in 3 days", "voting_closes": "in 5 days"} | options
    interaction = await fake.send_command(host, "challenge", values, subcommand=["create"])
    return await fake.answer(interaction)


async def open_challenge(fake: FakeDiscord, bot, host, **options: object) -> tuple[int, int]:
    """A host's new challenge: its id and its thread's."""
    challenge_id = challenge_id_of(await create(fake, host, **options))
    return challenge_id, (await bot.challenges.get(challenge_id, fake.guild_id)).thread_id


def challenge_id_of(reply: FakeMessage) -> int:
    assert reply.content.startswith("Challenge #"), reply.content
    return int(reply.content.split("#")[1].split(" ")[0])


def thread_of(reply: FakeMessage) -> int:
    return int(reply.content.split("<#")[1].split(">")[0])


async def enter(fake: FakeDiscord, user, challenge_id: int, *, image: bytes | None = None, job: int | None = None,
                title: str | None = None, **options: object) -> FakeMessage:
    values: dict[str, object] = {"challenge": challenge_id} | options
    if job is not None:
        values["job"] = job
    if title is not None:
        values["title"] = title
    attachments = {"image": ("entry.png", image, "image/png")} if image is not None else None
    interaction = await fake.send_command(user, "challenge", values, subcommand=["enter"], attachments=attachments)
    return await fake.answer(interaction)


async def sweep(bot) -> None:
    """What the minute's sweep does, now (the loop also runs it every minute)."""
    await bot.challenge_desk.sweep()


def vote_posts(fake: FakeDiscord, thread_id: int) -> dict[int, FakeMessage]:
    """The entry posts in a challenge's thread, by their public number; an entry posted twice fails the test."""
    posts: dict[int, FakeMessage] = {}
    for message in fake.messages(thread_id):
        ids = [custom_id for custom_id in message.custom_ids() if custom_id.startswith("easel:vote:")]
        if ids:
            number = int(message.content.split("#")[1].split("*")[0].split(" ")[0])
            assert number not in posts, f"entry #{number} was posted twice"
            posts[number] = message
    return posts


async def vote(fake: FakeDiscord, user, post: FakeMessage) -> FakeMessage:
    custom_id = next(c for c in post.custom_ids() if c.startswith("easel:vote:"))
    pressed = await fake.press_button(user, post, custom_id)
    return await fake.answer(pressed)


async def number_of(bot, challenge_id: int, user_id: int) -> int:
    async with bot.sessions() as session:
        return await session.scalar(select(ChallengeEntry.number).where(
            ChallengeEntry.challenge_id == challenge_id, ChallengeEntry.user_id == user_id))


async def phase_of(bot, challenge_id: int) -> ChallengePhase:
    async with bot.sessions() as session:
        return (await session.get(Challenge, challenge_id)).phase


async def test_a_challenge_from_creation_to_winners_and_the_leaderboard(fake, easel, clock):
    bot = await easel.start()
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    ada, bo, cy, dee, eve = (fake.add_member(name) for name in ("ada", "bo", "cy", "dee", "eve"))

    created = await create(fake, host)
    assert created.ephemeral and "<t:" in created.content
    challenge_id, thread_id = challenge_id_of(created), thread_of(created)
    announcement = fake.messages(fake.channel_id)[-1]
    embed = announcement.embeds[0]
    assert "A city that breathes" in embed["title"]
    closes = int((START + timedelta(days=3)).timestamp())
    assert any(f"<t:{closes}:R>" in field["value"] for field in embed["fields"])  # counts down by itself

    # Blind entries: each author alone sees a confirmation; nothing is posted in the thread.
    before = len(fake.messages(thread_id))
    first = await enter(fake, ada, challenge_id, image=png(colour=(250, 0, 0)), title="Red lungs")
    assert first.ephemeral and "Only you can see it" in first.content and first.attachments
    await enter(fake, bo, challenge_id, image=png(colour=(0, 250, 0)), title="Green breath")
    run = await fake.send_command(cy, "cppn", {"size": 16, "steps": 2, "seed": 4})
    await fake.answer(run)
    await wait_for_status(fake, bot, job_id_of(run), "done")
    await enter(fake, cy, challenge_id, job=job_id_of(run), title="Pattern city")
    await enter(fake, eve, challenge_id, image=png(colour=(90, 90, 90)), title="Grey fog")
    replaced = await enter(fake, ada, challenge_id, image=png(colour=(0, 0, 250)), title="Blue lungs")
    assert "replaced your earlier one" in replaced.content
    assert len(fake.messages(thread_id)) == before

    # The deadline passes: the sweep opens the vote with a contact sheet and numbered, anonymous entries.
    clock.advance(days=3, minutes=1)
    await sweep(bot)
    assert await phase_of(bot, challenge_id) == ChallengePhase.VOTING
    posts = vote_posts(fake, thread_id)
    assert sorted(posts) == [1, 2, 3, 4]
    titles = " ".join(post.content for post in posts.values())
    assert "Blue lungs" in titles and "Red lungs" not in titles
    assert not any(str(user.id) in post.content for post in posts.values() for user in (ada, bo, cy))
    sheet = next(m for m in fake.messages(thread_id) if "here are all 4" in m.content)
    assert sheet.attachments

    by_author = {user.name: posts[await number_of(bot, challenge_id, user.id)] for user in (ada, bo, cy)}
    own = await vote(fake, ada, by_author["ada"])
    assert own.ephemeral and "your own entry" in own.content
    assert "You voted for" in (await vote(fake, ada, by_author["bo"])).content
    assert "You voted for" in (await vote(fake, bo, by_author["ada"])).content
    assert "You voted for" in (await vote(fake, cy, by_author["bo"])).content
    changed = await vote(fake, cy, by_author["ada"])  # Cy changes her mind
    assert "moved from" in changed.content
    assert "You voted for" in (await vote(fake, dee, by_author["cy"])).content
    shown = await fake.answer(await fake.send_command(cy, "challenge", {"challenge": challenge_id},
                                                      subcommand=["show"]))
    assert f"Your vote: #{await number_of(bot, challenge_id, ada.id)}." in shown.content

    # Voting closes: authors revealed, ranked, winners pinged once and shown on a contact sheet.
    clock.advance(days=2)
    await sweep(bot)
    assert await phase_of(bot, challenge_id) == ChallengePhase.CLOSED
    results = fake.messages(thread_id)[-1]
    ranking = results.embeds[0]["description"]
    lines = ranking.splitlines()
    assert f"<@{ada.id}>" in lines[0] and "2 votes" in lines[0] and "3 points" in lines[0]
    assert "2nd" in lines[1] and "1 vote" in lines[1] and "2nd" in lines[2]  # Bo and Cy tie for second
    assert lines[3] == f"4th · #{await number_of(bot, challenge_id, eve.id)} “Grey fog” by <@{eve.id}> · 0 votes"
    assert results.attachments and results.embeds[0]["image"]["url"].startswith("attachment://winners")
    recipes = next(field for field in results.embeds[0]["fields"] if field["name"] == "How the winners were made")
    assert recipes["value"].startswith(f"#{await number_of(bot, challenge_id, cy.id)}: `cppn · seed 4")
    phase = next(field["value"] for field in announcement.embeds[0]["fields"] if field["name"] == "Phase")
    assert phase == "closed" and announcement.edits == 2  # the announcement showed each phase, once
    late = await vote(fake, dee, by_author["bo"])
    assert "has closed" in late.content

    await sweep(bot)  # nothing is posted twice
    assert fake.messages(thread_id)[-1].id == results.id

    board = await fake.answer(await fake.send_command(bo, "leaderboard"))
    assert not board.ephemeral
    first_line = board.content.splitlines()[1]
    assert f"<@{ada.id}> · 3 · 1 · 1" in first_line
    assert f"<@{bo.id}> · 2 · 1 · 0" in board.content and f"<@{cy.id}> · 2 · 1 · 0" in board.content
    for winner in (ada, bo, cy):  # the winners, once, in the thread (Cy was also pinged when her job finished)
        assert [message.id for message in fake.pings_of(winner) if message.channel_id == thread_id] == [results.id]
    assert not fake.pings_of(eve) and not fake.pings_of(dee)  # named in the ranking, never pinged


async def test_a_restart_with_both_deadlines_passed_catches_up_in_order(fake, easel, clock):
    bot = await easel.start()
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    ada, bo = fake.add_member("ada"), fake.add_member("bo")
    challenge_id, thread_id = await open_challenge(fake, bot, host, entries_close="in 2 minutes",
                                                   voting_closes="in 4 minutes")
    await enter(fake, ada, challenge_id, image=png(colour=(10, 200, 10)))
    await enter(fake, bo, challenge_id, image=png(colour=(10, 10, 200)))
    await easel.stop()

    clock.advance(minutes=10)  # both deadlines pass while the bot is down
    bot = await easel.start()  # the start-up sweep catches up
    await fake.wait_until(lambda: any("is closed" in m.content for m in fake.messages(thread_id)))
    texts = [m.content for m in fake.messages(thread_id)]
    opened = next(i for i, text in enumerate(texts) if "here are all 2" in text)
    closed = next(i for i, text in enumerate(texts) if "is closed" in text)
    assert opened < closed and len(vote_posts(fake, thread_id)) == 2

    await easel.stop()
    bot = await easel.start()
    await sweep(bot)
    assert [m.content for m in fake.messages(thread_id)] == texts  # nothing posted twice


async def test_vote_buttons_work_after_a_restart(fake, easel, clock):
    bot = await easel.start()
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    ada, bo = fake.add_member("ada"), fake.add_member("bo")
    challenge_id, thread_id = await open_challenge(fake, bot, host)
    await enter(fake, ada, challenge_id, image=png())
    clock.advance(days=3, minutes=1)
    await sweep(bot)
    await easel.stop()
    await easel.start()
    posts = vote_posts(fake, thread_id)
    assert "You voted for #1" in (await vote(fake, bo, posts[1])).content


async def test_a_hundred_concurrent_votes_are_each_counted_once(fake, easel, clock):
    bot = await easel.start()
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    ada, bo = fake.add_member("ada"), fake.add_member("bo")
    challenge_id, thread_id = await open_challenge(fake, bot, host)
    await enter(fake, ada, challenge_id, image=png(colour=(1, 2, 3)))
    await enter(fake, bo, challenge_id, image=png(colour=(3, 2, 1)))
    clock.advance(days=3, minutes=1)
    await sweep(bot)
    posts = vote_posts(fake, thread_id)
    voters = [fake.add_member(f"voter{i}") for i in range(100)]
    replies = await asyncio.gather(*(vote(fake, voter, posts[1 + i % 2]) for i, voter in enumerate(voters)))
    assert all("You voted for" in reply.content for reply in replies)
    async with bot.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ChallengeVote)) == 100
    standings = await bot.challenges.standings(challenge_id)
    assert sorted(s.votes for s in standings) == [50, 50]


async def test_hosts_close_and_cancel_and_students_may_not(fake, easel, clock):
    bot = await easel.start()
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    ada, bo = fake.add_member("ada"), fake.add_member("bo")
    refused = await fake.answer(await fake.send_command(ada, "challenge", {
        "title": "t", "theme": "t", "entries_close": "in 1 day", "voting_closes": "in 2 days"},
        subcommand=["create"]))
    assert "Only hosts" in refused.content

    challenge_id = challenge_id_of(await create(fake, host))
    await enter(fake, ada, challenge_id, image=png())
    for action in ("close", "cancel"):
        not_host = await fake.answer(await fake.send_command(ada, "challenge", {"challenge": challenge_id},
                                                             subcommand=[action]))
        assert "Only hosts" in not_host.content
    assert await phase_of(bot, challenge_id) == ChallengePhase.OPEN
    closed = await fake.answer(await fake.send_command(host, "challenge", {"challenge": challenge_id},
                                                       subcommand=["close"]))
    assert "voting is open" in closed.content
    late = await enter(fake, bo, challenge_id, image=png())
    assert "closed" in late.content and late.ephemeral
    closed = await fake.answer(await fake.send_command(host, "challenge", {"challenge": challenge_id},
                                                       subcommand=["close"]))
    assert "results are posted" in closed.content
    assert await phase_of(bot, challenge_id) == ChallengePhase.CLOSED

    other = challenge_id_of(await create(fake, host, title="Another"))
    cancelled = await fake.answer(await fake.send_command(host, "challenge", {"challenge": other},
                                                          subcommand=["cancel"]))
    assert "Cancelled" in cancelled.content and await phase_of(bot, other) == ChallengePhase.CANCELLED
    thread_id = (await bot.challenges.get(other, fake.guild_id)).thread_id
    assert "cancelled" in fake.messages(thread_id)[-1].content


@pytest.mark.parametrize(("options", "expected"), [
    ({"entries_close": "yesterday"}, "already passed"),
    ({"entries_close": "in 5 days", "voting_closes": "in 3 days"}, "Voting must close after entries close"),
    ({"entries_close": "whenever you like"}, "could not read"),
    ({"techniques": "nca, watercolour"}, "no technique `watercolour`"),
])
async def test_bad_challenges_are_refused_privately(fake, easel, options, expected):
    await easel.start()
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    reply = await create(fake, host, **options)
    assert reply.ephemeral and expected in reply.content, reply.content


async def test_posts_cut_short_by_discord_are_finished_by_the_next_sweep_and_never_repeated(fake, easel, clock):
    bot = await easel.start()
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    authors = [fake.add_member(f"author{i}") for i in range(4)]
    challenge_id, thread_id = await open_challenge(fake, bot, host)
    for index, author in enumerate(authors):
        await enter(fake, author, challenge_id, image=png(colour=(60 * index, 90, 30)))

    # Discord refuses a post for longer than the bot waits: the sweep stops there, and the next one goes on.
    clock.advance(days=3, minutes=1)
    fake.rate_limit_next(1, f"/channels/{thread_id}/messages", retry_after=600.0)
    await sweep(bot)
    assert await phase_of(bot, challenge_id) == ChallengePhase.VOTING
    assert not vote_posts(fake, thread_id)
    assert (await bot.challenges.get(challenge_id, fake.guild_id)).published_phase == ChallengePhase.OPEN
    await sweep(bot)
    assert len(vote_posts(fake, thread_id)) == 4
    challenge = await bot.challenges.get(challenge_id, fake.guild_id)
    assert challenge.published_phase == ChallengePhase.VOTING

    # A restart in the middle of the posts: the rows say which posts exist, so the rest follow once.
    async with bot.sessions() as session:
        entries = list(await session.scalars(select(ChallengeEntry).where(ChallengeEntry.challenge_id == challenge_id)
                                             .order_by(ChallengeEntry.number)))
    for entry in entries[2:]:  # as if the bot died after posting the first two entries
        fake.delete_message(next(m for m in fake.messages(thread_id) if f"easel:vote:{entry.id}" in m.custom_ids()))
    async with bot.sessions.begin() as session:
        for entry in entries[2:]:
            (await session.get(ChallengeEntry, entry.id)).vote_message_id = None
        (await session.get(Challenge, challenge_id)).published_phase = ChallengePhase.OPEN
    await easel.stop()
    bot = await easel.start()
    await fake.wait_until(lambda: len(vote_posts(fake, thread_id)) == 4)
    await sweep(bot)
    sheets = [m for m in fake.messages(thread_id) if "here are all 4" in m.content]
    assert len(sheets) == 1 and len(vote_posts(fake, thread_id)) == 4
    assert (await bot.challenges.get(challenge_id, fake.guild_id)).published_phase == ChallengePhase.VOTING


async def test_forget_me_removes_entries_and_votes_and_the_counts_follow(fake, easel, clock):
    bot = await easel.start()
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    ada, bo, cy = fake.add_member("ada"), fake.add_member("bo"), fake.add_member("cy")
    challenge_id, thread_id = await open_challenge(fake, bot, host)
    for person in (ada, bo):
        await enter(fake, person, challenge_id, image=png(colour=(9, 9, 9)))
    clock.advance(days=3, minutes=1)
    await sweep(bot)
    posts = vote_posts(fake, thread_id)
    ada_post = posts[await number_of(bot, challenge_id, ada.id)]
    bo_post = posts[await number_of(bot, challenge_id, bo.id)]
    await vote(fake, ada, bo_post)
    await vote(fake, bo, ada_post)
    await vote(fake, cy, bo_post)
    assert sorted(s.votes for s in await bot.challenges.standings(challenge_id)) == [1, 2]

    asked = await fake.send_command(ada, "forget-me")
    await fake.wait_for_response(asked)
    pressed = await fake.press_button(ada, asked.original, f"easel:forget:{ada.id}")
    summary = (await fake.answer(pressed)).content
    assert "1 challenge vote" in summary and "1 challenge entry" in summary

    standings = await bot.challenges.standings(challenge_id)
    assert [(s.entry.user_id, s.votes) for s in standings] == [(bo.id, 1)]  # her vote for Bo is gone too
    assert ada_post.deleted and not bo_post.deleted
    assert not list((easel.settings.data_dir / "challenge-entries").glob(f"{ada_post.id}*"))
    async with bot.sessions() as session:
        left = set(await session.scalars(select(ChallengeEntry.image_path)))
    on_disk = {str(path) for path in (easel.settings.data_dir / "challenge-entries").iterdir()}
    assert on_disk == left
    refused = await vote(fake, bo, ada_post)  # a button left in someone's client
    assert "no longer in the challenge" in refused.content


async def test_list_show_autocomplete_and_the_leaderboard_before_any_winner(fake, easel, clock):
    await easel.start()
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    ada, bo = fake.add_member("ada"), fake.add_member("bo")
    empty = await fake.answer(await fake.send_command(ada, "challenge", subcommand=["list"]))
    assert "No challenge is running" in empty.content
    board = await fake.answer(await fake.send_command(ada, "leaderboard"))
    assert "nobody has points" in board.content

    first = challenge_id_of(await create(fake, host, title="Breathing city"))
    second = challenge_id_of(await create(fake, host, title="Quiet sea", entries_close="in 1 hour",
                                          voting_closes="in 2 hours"))
    await enter(fake, ada, first, image=png(), title="My lungs")
    await enter(fake, bo, second, image=png())
    await fake.answer(await fake.send_command(host, "challenge", {"challenge": second}, subcommand=["close"]))

    listing = await fake.answer(await fake.send_command(ada, "challenge", subcommand=["list"]))
    assert listing.ephemeral
    assert f"#{first} Breathing city** · entries close <t:" in listing.content and "1 entry ·" in listing.content
    assert f"#{second} Quiet sea" in listing.content and "voting closes <t:" in listing.content

    typed = await fake.autocomplete(ada, "challenge", "challenge", "city", subcommand=["enter"])
    await fake.wait_for_response(typed)
    assert [c["value"] for c in typed.responses[0].data["choices"]] == [first]
    typed = await fake.autocomplete(ada, "challenge", "challenge", "", subcommand=["enter"])
    await fake.wait_for_response(typed)
    assert [c["value"] for c in typed.responses[0].data["choices"]] == [first]  # only open ones take entries

    shown = await fake.answer(await fake.send_command(ada, "challenge", {"challenge": first}, subcommand=["show"]))
    assert shown.ephemeral and "Your entries: 1. My lungs" in shown.content
    assert shown.embeds[0]["footer"]["text"] == "1 entry so far"
    other = fake.add_member("other")
    theirs = await fake.answer(await fake.send_command(other, "challenge", {"challenge": first}, subcommand=["show"]))
    assert "My lungs" not in theirs.content  # blind: nobody else sees an entry
    elsewhere_guild = fake.add_guild("Elsewhere")
    stranger = fake.add_member("stranger", guild_id=elsewhere_guild)
    channel = fake.guilds[elsewhere_guild].channel_id
    missing = await fake.answer(await fake.send_command(stranger, "challenge", {"challenge": first},
                                                        subcommand=["show"], channel_id=channel))
    assert f"no challenge #{first} in this server" in missing.content


@pytest.mark.parametrize(("case", "expected"), [
    ("not an image", "image"),
    ("someone else's job", "is not one of yours"),
    ("wrong technique", "takes only jobs made with `nca`"),
    ("missing words", "lacks “harbour”"),
    ("uploads off", "takes only jobs made with Easel"),
    ("blocked title", "hosts do not allow that text"),
    ("both", "Enter one piece of work"),
    ("no such challenge", "There is no challenge #999"),
    ("after the deadline", "closed"),
])
async def test_bad_entries_are_refused_privately_and_store_nothing(fake, easel, clock, case, expected):
    bot = await easel.start()
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    ada, bo = fake.add_member("ada"), fake.add_member("bo")
    rules = {"techniques": "nca", "required_words": "harbour", "uploads": False} if case in (
        "wrong technique", "missing words", "uploads off") else {}
    if case == "missing words":
        rules["techniques"] = "imagine"
    challenge_id = challenge_id_of(await create(fake, host, **rules))
    image, job, title, target = png(), None, None, challenge_id
    if case in ("someone else's job", "wrong technique", "missing words", "both"):
        owner = bo if case == "someone else's job" else ada
        if case == "missing words":
            run = await fake.send_command(owner, "imagine", {"prompt": "a lighthouse", "size": 32, "steps": 1})
        else:
            run = await fake.send_command(owner, "cppn", {"size": 16, "steps": 2})
        await fake.answer(run)
        job = (await wait_for_status(fake, bot, job_id_of(run), "done")).id
        image = png() if case == "both" else None
    if case == "not an image":
        image = b"this is not a picture"
    if case == "blocked title":
        await fake.answer(await fake.send_command(host, "easel", {"kind": "word", "value": "gloom"},
                                                  subcommand=["moderation", "add"]))
        title = "Gloom city"
    if case == "no such challenge":
        target = 999
    if case == "after the deadline":
        clock.advance(days=3, seconds=1)  # passed, though no sweep has run yet
    reply = await enter(fake, ada, target, image=image, job=job, title=title)
    assert reply.ephemeral and expected in reply.content, reply.content
    async with bot.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ChallengeEntry)) == 0
    assert not any((easel.settings.data_dir / "challenge-entries").glob("*"))


@pytest.mark.parametrize("denied", ["send_messages", "create_public_threads"])
async def test_a_channel_the_bot_may_not_post_in_creates_no_challenge_and_says_why(fake, easel, denied):
    bot = await easel.start()
    fake.deny_bot_permission(fake.channel_id, denied)
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    reply = await create(fake, host)
    assert reply.ephemeral and "may not post or open threads" in reply.content, reply.content
    async with bot.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Challenge)) == 0
    assert fake.messages(fake.channel_id) == []  # an announcement without its thread is taken back
    await sweep(bot)  # and the sweeper has nothing left to retry


async def test_an_announcement_whose_thread_failed_gets_its_thread_later_and_is_not_repeated(fake, easel):
    bot = await easel.start()
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    challenge = await bot.challenges.create(  # as if the bot stopped right after storing it
        guild_id=fake.guild_id, host_id=host.id, channel_id=fake.channel_id, title="Later", theme="t",
        submissions_close="in 1 day", voting_close="in 2 days")
    fake.deny_bot_permission(fake.channel_id, "create_public_threads")
    await sweep(bot)  # the announcement goes out; its thread does not
    assert len(fake.messages(fake.channel_id)) == 1
    assert (await bot.challenges.get(challenge.id, fake.guild_id)).thread_id is None
    fake.allow_bot_permission(fake.channel_id, "create_public_threads")
    await sweep(bot)
    found = await bot.challenges.get(challenge.id, fake.guild_id)
    assert found.thread_id in fake.threads and found.published_phase == ChallengePhase.OPEN
    assert len(fake.messages(fake.channel_id)) == 1 and fake.threads[found.thread_id].id == found.thread_id


async def test_results_stored_but_not_marked_published_are_not_posted_again(fake, easel, clock):
    bot = await easel.start()
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    challenge_id, thread_id = await open_challenge(fake, bot, host)
    await enter(fake, fake.add_member("ada"), challenge_id, image=png())
    clock.advance(days=5, minutes=1)
    await sweep(bot)
    closing = [m for m in fake.messages(thread_id) if "is closed" in m.content]
    assert len(closing) == 1
    await bot.challenges.record_posts(challenge_id, published_phase=ChallengePhase.VOTING)  # a crash just before
    await easel.stop()
    bot = await easel.start()
    await sweep(bot)
    assert [m for m in fake.messages(thread_id) if "is closed" in m.content] == closing
    assert (await bot.challenges.get(challenge_id, fake.guild_id)).published_phase == ChallengePhase.CLOSED


async def test_a_host_closing_while_the_sweeper_runs_posts_everything_once(fake, easel, clock):
    bot = await easel.start()
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    challenge_id, thread_id = await open_challenge(fake, bot, host)
    for index in range(3):
        await enter(fake, fake.add_member(f"author{index}"), challenge_id, image=png(colour=(index, 0, 0)))
    clock.advance(days=3, minutes=1)
    challenge = await bot.challenges.get(challenge_id, fake.guild_id)
    closing = fake.send_command(host, "challenge", {"challenge": challenge_id}, subcommand=["close"])
    *_, interaction = await asyncio.gather(sweep(bot), bot.challenge_desk.catch_up(challenge), closing)
    await fake.answer(interaction)
    await sweep(bot)
    assert len(vote_posts(fake, thread_id)) == 3
    assert len([m for m in fake.messages(thread_id) if "here are all 3" in m.content]) == 1
