"""The challenge service against a real SQLite file made by the migrations, real images and real job rows.

Time is a mutable clock handed to the service; a test moves it instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from bot.artwork import ArtworkIntake
from bot.challenges import service as challenge_service
from bot.challenges.service import ChallengeService, EntryReceipt, rule_problems, vote_statement
from bot.errors import UserFacingError
from bot.guilds import GuildService
from bot.jobs.repository import JobRepository
from bot.jobs.service import JobService
from bot.jobs.spec import JobSpec
from bot.jobs.uploads import UploadStore
from bot.moderation import ModerationService
from bot.settings import Settings
from models import Challenge, ChallengeEntry, ChallengePhase, ChallengeVote, Job, JobStatus
from tests.clock import SATURDAY_NOON, Clock
from tests.postgres import both_engines

pytestmark = both_engines

GUILD, OTHER_GUILD, HOST = 1, 2, 99
ADA, BO, CY, DEE = 10, 11, 12, 13
NAMES = {ADA: "Ada", BO: "Bo", CY: "Cy", DEE: "Dee"}
NOW = SATURDAY_NOON


def png(colour=(200, 40, 40), size=(48, 32)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def make_service(sessions, tmp_path: Path, clock: Clock):
    def make(**settings: object) -> ChallengeService:
        config = Settings(_env_file=None, data_dir=tmp_path, **settings)  # type: ignore[call-arg]
        moderation = ModerationService(sessions, max_terms=10, budget_seconds=1.0)
        uploads = UploadStore(tmp_path / "uploads", max_bytes=config.max_upload_bytes,
                              max_pixels=config.max_image_pixels)
        jobs = JobService(config, JobRepository(sessions), GuildService(sessions), moderation, uploads)
        return ChallengeService(config, sessions, ArtworkIntake(config, jobs, moderation), clock=clock)
    return make


@pytest.fixture
def service(make_service) -> ChallengeService:
    return make_service()


async def new_challenge(service: ChallengeService, **changes: object) -> Challenge:
    values: dict = {"guild_id": GUILD, "host_id": HOST, "channel_id": 5, "title": "City",
                    "theme": "A city that breathes", "submissions_close": "in 3 days", "voting_close": "in 5 days"}
    return await service.create(**(values | changes))


async def enter(service: ChallengeService, challenge: Challenge, user_id: int, **changes: object) -> EntryReceipt:
    values: dict = {"challenge_id": challenge.id, "guild_id": challenge.guild_id, "user_id": user_id,
                    "display_name": NAMES.get(user_id, f"member {user_id}"), "image": png(), "job_id": None,
                    "title": None}
    return await service.enter(**(values | changes))


async def finished_job(service: ChallengeService, tmp_path: Path, user_id: int, spec: dict,
                       status: JobStatus = JobStatus.DONE) -> Job:
    """A job row as the worker leaves it: DONE with its image stored at result_path."""
    folder = tmp_path / "results"
    folder.mkdir(exist_ok=True)
    result = folder / f"job-{len(list(folder.iterdir()))}.png"
    Image.new("RGB", (24, 24), (10, 200, 30)).save(result)
    return await service.intake.jobs.repository.add(Job(
        channel_id=1, user_id=user_id, technique=spec["technique"], spec=spec, seed=spec["seed"], title="t",
        status=status, result_path=str(result) if status == JobStatus.DONE else None))


def imagine(prompt: str) -> dict:
    return {"technique": "imagine", "seed": 7, "config": {"prompt": prompt}}


CPPN = {"technique": "cppn", "seed": 3, "config": {}}


async def to_voting(service: ChallengeService, clock: Clock, challenge: Challenge) -> Challenge:
    clock.now = max(clock.now, challenge.submissions_close_at)
    challenge = await service.advance(challenge)
    assert challenge.phase == ChallengePhase.VOTING
    return challenge


async def by_author(service: ChallengeService, challenge: Challenge) -> dict[int, ChallengeEntry]:
    return {entry.user_id: entry for entry in await service.entries(challenge.id)}


def on_disk(path: str | None) -> bool:
    return path is not None and Path(path).is_file()


async def count(sessions, model, *where) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


# --- create -------------------------------------------------------------------------------------------------


async def test_create_stores_an_open_challenge_with_its_rules_in_utc(service, sessions):
    challenge = await new_challenge(service, submissions_close="friday 18:00",
                                    voting_close="2026-12-13 18:00+01:00", techniques="Imagine, cppn; imagine",
                                    required_words="city, night, city", entries_per_member=3, uploads_allowed=False)
    async with sessions() as session:
        stored = await session.get(Challenge, challenge.id)
    assert stored.phase == ChallengePhase.OPEN and stored.published_phase is None
    assert stored.submissions_close_at == datetime(2026, 12, 11, 18, 0, tzinfo=UTC)
    assert stored.voting_close_at == datetime(2026, 12, 13, 17, 0, tzinfo=UTC)
    assert stored.techniques == ["imagine", "cppn"] and stored.required_words == ["city", "night"]
    assert (stored.entries_per_member, stored.uploads_allowed) == (3, False)
    assert (stored.guild_id, stored.created_by, stored.channel_id, stored.created_at) == (GUILD, HOST, 5, NOW)
    assert stored.ended_at is None


REFUSED_CREATIONS = [
    ({"title": "   "}, "title of 1 to 100"),
    ({"title": "x" * 101}, "title of 1 to 100"),
    ({"theme": ""}, "theme of 1 to 1000"),
    ({"theme": "x" * 1001}, "theme of 1 to 1000"),
    ({"techniques": "imagine, watercolour"}, "no technique `watercolour`"),
    ({"required_words": ", ".join(f"w{i}" for i in range(11))}, "at most 10 required words"),
    ({"required_words": "city, " + "x" * 41}, "at most 10 required words"),
    ({"entries_per_member": 0}, "Entries per member must be 1 to 10"),
    ({"entries_per_member": 11}, "Entries per member must be 1 to 10"),
    ({"submissions_close": "someday"}, "could not read `someday`"),
    ({"submissions_close": "in 5 days", "voting_close": "in 3 days"}, "Voting must close after entries close"),
    ({"voting_close": "in 400 days"}, "a year at most"),
]


async def test_create_refuses_bad_input_and_stores_nothing(service, sessions):
    for changes, says in REFUSED_CREATIONS:  # one database for all: each case is a plain refusal
        with pytest.raises(UserFacingError, match=says):
            await new_challenge(service, **changes)
    assert await count(sessions, Challenge) == 0


async def test_create_takes_the_longest_title_theme_and_rule_lists(service):
    challenge = await new_challenge(service, title="t" * 100, theme="x" * 1000, entries_per_member=10,
                                    required_words=", ".join(f"w{i}" for i in range(10)),
                                    techniques="imagine style dream nca cppn")
    assert len(challenge.required_words) == 10 and len(challenge.techniques) == 5


async def test_the_active_challenge_limit_counts_only_running_challenges(make_service, sessions, clock):
    service = make_service(max_active_challenges=2)
    first = await new_challenge(service, title="One")
    second = await new_challenge(service, title="Two")
    await new_challenge(service, guild_id=OTHER_GUILD, title="Elsewhere")  # another guild has its own limit
    with pytest.raises(UserFacingError, match="already runs 2 challenges"):
        await new_challenge(service, title="Three")
    assert await count(sessions, Challenge, Challenge.guild_id == GUILD) == 2

    await service.cancel(first.id, GUILD)
    await new_challenge(service, title="Three")
    with pytest.raises(UserFacingError, match="already runs 2"):
        await new_challenge(service, title="Four")

    await enter(service, second, ADA)
    await enter(service, second, BO)
    await to_voting(service, clock, second)  # voting still counts as running
    with pytest.raises(UserFacingError, match="already runs 2"):
        await new_challenge(service, title="Four")
    await service.end_phase_now(second.id, GUILD)  # closed: no longer counts
    assert (await service.get(second.id, GUILD)).phase == ChallengePhase.CLOSED
    await new_challenge(service, title="Four")
    phases = {c.title: c.phase for c in await service.find(GUILD, "", phases=list(ChallengePhase))}
    assert phases == {"One": ChallengePhase.CANCELLED, "Two": ChallengePhase.CLOSED, "Three": ChallengePhase.OPEN,
                      "Four": ChallengePhase.OPEN}


async def test_racing_creations_respect_the_active_limit(make_service, sessions):
    service = make_service(max_active_challenges=1)
    results = await asyncio.gather(*(new_challenge(service, title=f"Race {i}") for i in range(4)),
                                   return_exceptions=True)
    created = [r for r in results if isinstance(r, Challenge)]
    assert len(created) == 1
    assert all(isinstance(r, UserFacingError) and "already runs 1 challenges" in str(r)
               for r in results if r not in created)
    assert await count(sessions, Challenge) == 1


async def test_creators_of_one_server_take_turns_before_they_count(make_service, monkeypatch):
    """The count only holds if creators count one at a time (tests/test_take_turns.py shows the lock itself)."""
    service = make_service(max_active_challenges=1)
    names = []
    real_take_turns = challenge_service.take_turns

    async def recording(session, name):
        names.append(name)
        await real_take_turns(session, name)

    monkeypatch.setattr(challenge_service, "take_turns", recording)
    challenge = await new_challenge(service)
    assert names == [f"challenge-create:{challenge.guild_id}"]


# --- enter --------------------------------------------------------------------------------------------------


async def test_an_upload_is_stored_as_a_small_webp_named_by_the_entry(service, sessions, tmp_path):
    challenge = await new_challenge(service)
    big = io.BytesIO()
    Image.linear_gradient("L").resize((1600, 1200)).convert("RGB").save(big, format="PNG")
    receipt = await enter(service, challenge, ADA, image=big.getvalue(), title="  Breathing walls  ")
    entry = receipt.entry
    assert (receipt.replaced, receipt.entry.slot, receipt.challenge.id) == (False, 1, challenge.id)
    assert Path(entry.image_path) == tmp_path / "challenge-entries" / f"{entry.id}.webp"
    with Image.open(entry.image_path) as stored:
        assert stored.format == "WEBP" and max(stored.size) == 1024
    assert (entry.slot, entry.title, entry.job_id, entry.recipe, entry.number) == (1, "Breathing walls", None, None,
                                                                                    None)
    assert entry.created_at == NOW
    assert [e.id for e in await service.entries_of(challenge.id, ADA)] == [entry.id]
    assert await service.entry_counts([challenge.id]) == {challenge.id: 1}
    assert [p.name for p in (tmp_path / "challenge-entries").iterdir()] == [f"{entry.id}.webp"]  # no .part left


async def test_a_second_entry_blindly_replaces_the_first_when_one_is_allowed(service, sessions):
    challenge = await new_challenge(service)
    first = (await enter(service, challenge, ADA, image=png((1, 1, 1)))).entry
    await enter(service, challenge, BO)
    again = await enter(service, challenge, ADA, image=png((250, 250, 250)), title="Better")
    assert again.replaced is True and len(await service.entries_of(challenge.id, ADA)) == 1
    assert again.entry.id != first.id and again.entry.slot == 1
    assert not on_disk(first.image_path) and on_disk(again.entry.image_path)
    async with sessions() as session:
        assert await session.get(ChallengeEntry, first.id) is None
    mine = await service.entries_of(challenge.id, ADA)
    assert [(e.id, e.title) for e in mine] == [(again.entry.id, "Better")]
    with Image.open(again.entry.image_path) as stored:
        assert stored.convert("RGB").getpixel((0, 0))[0] > 200  # the new picture, not the old one
    assert await service.entry_counts([challenge.id]) == {challenge.id: 2}


async def test_with_two_entries_allowed_a_third_needs_replace_and_swaps_that_slot(service, sessions):
    challenge = await new_challenge(service, entries_per_member=2)
    one = await enter(service, challenge, ADA, title="one")
    two = await enter(service, challenge, ADA, title="two")
    assert [(r.entry.slot, r.replaced) for r in (one, two)] == [(1, False), (2, False)]
    assert len(await service.entries_of(challenge.id, ADA)) == 2
    with pytest.raises(UserFacingError) as refused:
        await enter(service, challenge, ADA, title="three")
    assert "`replace`" in str(refused.value) and "You have 2 entries" in str(refused.value)
    with pytest.raises(UserFacingError, match="`replace` is the number of one of your entries, 1 to 2"):
        await enter(service, challenge, ADA, title="three", replace=3)

    swapped = await enter(service, challenge, ADA, title="three", replace=1)
    assert (swapped.replaced, swapped.entry.slot) == (True, 1)
    mine = await service.entries_of(challenge.id, ADA)
    assert len(mine) == 2
    assert [(e.slot, e.title) for e in mine] == [(1, "three"), (2, "two")]
    assert mine[1].id == two.entry.id
    assert not on_disk(one.entry.image_path) and on_disk(two.entry.image_path)
    assert await count(sessions, ChallengeEntry) == 2


async def test_an_entry_is_an_image_or_a_job_never_both_or_neither(service, sessions, tmp_path):
    challenge = await new_challenge(service)
    job = await finished_job(service, tmp_path, ADA, imagine("a city"))
    with pytest.raises(UserFacingError, match="Enter one piece of work"):
        await enter(service, challenge, ADA, image=png(), job_id=job.id)
    with pytest.raises(UserFacingError, match="Enter one piece of work"):
        await enter(service, challenge, ADA, image=None, job_id=None)
    with pytest.raises(UserFacingError):
        await enter(service, challenge, ADA, image=b"not an image at all")
    with pytest.raises(UserFacingError, match="keep it to 100 at most"):
        await enter(service, challenge, ADA, title="x" * 101)
    assert await count(sessions, ChallengeEntry) == 0


async def test_uploads_are_refused_when_the_challenge_takes_only_jobs(service, sessions, tmp_path):
    challenge = await new_challenge(service, uploads_allowed=False)
    with pytest.raises(UserFacingError, match="takes only jobs made with Easel"):
        await enter(service, challenge, ADA)
    job = await finished_job(service, tmp_path, ADA, CPPN)
    receipt = await enter(service, challenge, ADA, image=None, job_id=job.id)
    assert receipt.entry.job_id == job.id
    assert await count(sessions, ChallengeEntry) == 1


async def test_a_job_entry_must_be_your_own_finished_job(service, sessions, tmp_path):
    challenge = await new_challenge(service)
    theirs = await finished_job(service, tmp_path, BO, CPPN)
    with pytest.raises(UserFacingError, match=f"Job #{theirs.id} is not one of yours"):
        await enter(service, challenge, ADA, image=None, job_id=theirs.id)
    with pytest.raises(UserFacingError, match="Job #999 is not one of yours"):
        await enter(service, challenge, ADA, image=None, job_id=999)
    running = await finished_job(service, tmp_path, ADA, CPPN, status=JobStatus.RUNNING)
    with pytest.raises(UserFacingError, match=f"Job #{running.id} has not finished"):
        await enter(service, challenge, ADA, image=None, job_id=running.id)
    assert await count(sessions, ChallengeEntry) == 0


async def test_a_job_entry_must_keep_the_technique_and_word_rules(service, sessions, tmp_path):
    only_imagine = await new_challenge(service, title="Prompts", techniques="imagine")
    cppn = await finished_job(service, tmp_path, ADA, CPPN)
    with pytest.raises(UserFacingError) as refused:
        await enter(service, only_imagine, ADA, image=None, job_id=cppn.id)
    assert str(refused.value) == (f"Job #{cppn.id} was made with `cppn`; this challenge takes only jobs made with "
                                  "`imagine`.")

    city = await new_challenge(service, title="Words", required_words="city")
    with pytest.raises(UserFacingError) as refused:
        await enter(service, city, ADA, image=None, job_id=cppn.id)
    assert "needs the words “city” in the prompt, and a `cppn` job has no prompt" in str(refused.value)

    scape = await finished_job(service, tmp_path, ADA, imagine("a cityscape at dusk"))
    with pytest.raises(UserFacingError) as refused:
        await enter(service, city, ADA, image=None, job_id=scape.id)
    assert f"Job #{scape.id}'s prompt lacks “city”" in str(refused.value)
    assert await count(sessions, ChallengeEntry) == 0

    capital = await finished_job(service, tmp_path, ADA, imagine("City lights | rain:0.5"))
    receipt = await enter(service, city, ADA, image=None, job_id=capital.id)
    assert receipt.entry.job_id == capital.id and receipt.entry.recipe == imagine("City lights | rain:0.5")
    with Image.open(receipt.entry.image_path) as stored:
        assert stored.format == "WEBP" and stored.size == (24, 24)


def test_rule_problems_names_each_broken_rule_and_matches_whole_words():
    challenge = Challenge(techniques=["cppn", "nca"], required_words=["red moon", "city"])
    spec = JobSpec.from_dict(imagine("A RED MOON over the cityscape"))
    problems = rule_problems(challenge, spec, 4)
    assert problems == ["Job #4 was made with `imagine`; this challenge takes only jobs made with `cppn` or `nca`.",
                        "Job #4's prompt lacks “city”; this challenge needs “red moon” and “city” in it."]
    for prompt, ok in [("city", True), ("the City, at night: a red moon", True), ("city-red moon", True),
                       ("cities under a red moon", False), ("red moons in a city", False),
                       ("a red moon over the citycentre", False)]:
        keeps = rule_problems(Challenge(techniques=[], required_words=["city", "red moon"] if "moon" in prompt
                                        else ["city"]), JobSpec.from_dict(imagine(prompt)), 1) == []
        assert keeps is ok, prompt
    assert rule_problems(Challenge(techniques=[], required_words=[]), JobSpec.from_dict(CPPN), 1) == []


async def test_entries_after_the_deadline_are_refused_before_any_sweep(service, sessions, clock):
    challenge = await new_challenge(service)
    clock.now = challenge.submissions_close_at - timedelta(seconds=1)
    await enter(service, challenge, ADA)
    clock.advance(seconds=1)
    assert (await service.get(challenge.id, GUILD)).phase == ChallengePhase.OPEN  # no sweep ran
    with pytest.raises(UserFacingError, match="Entries for \\*\\*City\\*\\* closed"):
        await enter(service, challenge, BO)
    with pytest.raises(UserFacingError, match="closed"):
        await enter(service, challenge, ADA)  # nor may an entry be replaced
    with pytest.raises(UserFacingError, match="closed"):  # said first: nothing else about the entry matters now
        await enter(service, challenge, CY, image=b"not a picture", title="x" * 500)
    assert [e.user_id for e in await service.entries(challenge.id)] == [ADA]


async def test_another_guilds_challenge_reads_as_missing(service, sessions):
    challenge = await new_challenge(service)
    with pytest.raises(UserFacingError, match=f"There is no challenge #{challenge.id} in this server"):
        await enter(service, challenge, ADA, guild_id=OTHER_GUILD)
    with pytest.raises(UserFacingError, match="There is no challenge"):
        await service.get(challenge.id, OTHER_GUILD)
    assert await count(sessions, ChallengeEntry) == 0


async def test_entry_titles_pass_the_guilds_moderation(service, sessions):
    challenge = await new_challenge(service)
    await service.intake.moderation.add_term(GUILD, "word", "badword", added_by=HOST)
    with pytest.raises(UserFacingError, match="do not allow that text"):
        await enter(service, challenge, ADA, title="My BADWORD city")
    assert await count(sessions, ChallengeEntry) == 0
    refusals = await service.intake.moderation.recent_refusals(GUILD)
    assert [(r.user_id, r.prompt) for r in refusals] == [(ADA, "My BADWORD city")]  # logged for the hosts
    await enter(service, challenge, ADA, title="My good city")
    elsewhere = await new_challenge(service, guild_id=OTHER_GUILD)  # blocked terms are the guild's own
    assert (await enter(service, elsewhere, BO, title="My BADWORD city")).entry.title == "My BADWORD city"


async def test_a_full_challenge_refuses_new_entries_but_takes_replacements(make_service, sessions, tmp_path):
    service = make_service(max_challenge_entries=2)
    challenge = await new_challenge(service)
    await enter(service, challenge, ADA)
    await enter(service, challenge, BO)
    with pytest.raises(UserFacingError, match="is full"):
        await enter(service, challenge, CY)
    assert await count(sessions, ChallengeEntry) == 2
    assert len(list((tmp_path / "challenge-entries").iterdir())) == 2  # the refused one left no file
    replaced = await enter(service, challenge, ADA, title="swapped")
    assert replaced.replaced is True
    assert sorted((e.user_id, e.title) for e in await service.entries(challenge.id)) == [(ADA, "swapped"), (BO, None)]
    other = await new_challenge(service, title="Another")  # the limit is per challenge
    await enter(service, other, CY)


async def test_racing_entries_never_overfill_a_challenge(make_service, sessions, tmp_path):
    service = make_service(max_challenge_entries=2)
    challenge = await new_challenge(service)
    await enter(service, challenge, ADA)
    results = await asyncio.gather(enter(service, challenge, BO), enter(service, challenge, CY),
                                   return_exceptions=True)
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 1 and isinstance(refused[0], UserFacingError) and "is full" in str(refused[0])
    assert await count(sessions, ChallengeEntry) == 2
    stored = {p.name for p in (tmp_path / "challenge-entries").iterdir()}
    assert stored == {f"{e.id}.webp" for e in await service.entries(challenge.id)}  # no file of the refused one


async def test_an_entrant_counts_only_after_the_one_before_has_committed(make_service, sessions, monkeypatch):
    """The overlap forced: the first entrant's transaction waits after its count, while the second one's runs."""
    service = make_service(max_challenge_entries=2)
    challenge = await new_challenge(service)
    await enter(service, challenge, ADA)
    first_counted, go_on = asyncio.Event(), asyncio.Event()
    real_remember = challenge_service.remember_member

    async def remember_slowly(session, guild_id, user_id, display_name):
        if user_id == BO:  # the first entrant holds its transaction open here
            first_counted.set()
            await go_on.wait()
        await real_remember(session, guild_id, user_id, display_name)

    monkeypatch.setattr(challenge_service, "remember_member", remember_slowly)
    first = asyncio.create_task(enter(service, challenge, BO))
    await first_counted.wait()
    second = asyncio.create_task(enter(service, challenge, CY))
    await asyncio.sleep(0.5)  # the second gets as far as it can while the first is open
    go_on.set()
    results = await asyncio.gather(first, second, return_exceptions=True)
    assert not isinstance(results[0], Exception)
    assert isinstance(results[1], UserFacingError) and "is full" in str(results[1])
    assert await count(sessions, ChallengeEntry) == 2


async def test_entries_racing_the_opening_of_the_vote_are_numbered_or_refused(service, clock):
    challenge = await new_challenge(service)
    await enter(service, challenge, ADA)
    clock.now = challenge.submissions_close_at - timedelta(seconds=1)  # entries still open as they start
    late_entrants = range(20, 26)
    results = await asyncio.gather(*(enter(service, challenge, user_id) for user_id in late_entrants),
                                   service.transition(challenge.id, ChallengePhase.OPEN, ChallengePhase.VOTING),
                                   return_exceptions=True)
    assert results[-1] is True
    refused = [r for r in results[:-1] if isinstance(r, Exception)]
    assert all(isinstance(r, UserFacingError) and "closed" in str(r) for r in refused)
    entries = await service.entries(challenge.id)
    assert len(entries) == 1 + len(late_entrants) - len(refused)
    assert [e.number for e in entries] == list(range(1, len(entries) + 1))  # none slipped in unnumbered


async def test_one_member_entering_twice_at_once_keeps_one_entry_and_one_file(service, sessions, tmp_path):
    challenge = await new_challenge(service)
    receipts = await asyncio.gather(*(enter(service, challenge, ADA, title=f"take {i}") for i in range(3)))
    assert sorted(r.replaced for r in receipts) == [False, True, True]
    mine = await service.entries_of(challenge.id, ADA)
    assert len(mine) == 1 and mine[0].slot == 1
    assert [p.name for p in (tmp_path / "challenge-entries").iterdir()] == [f"{mine[0].id}.webp"]


# --- phases -------------------------------------------------------------------------------------------------


async def test_racing_transitions_take_the_phase_change_once(service, sessions, clock):
    challenge = await new_challenge(service)
    await enter(service, challenge, ADA)
    clock.now = challenge.submissions_close_at
    results = await asyncio.gather(
        service.transition(challenge.id, ChallengePhase.OPEN, ChallengePhase.VOTING),
        service.transition(challenge.id, ChallengePhase.OPEN, ChallengePhase.VOTING))
    assert sorted(results) == [False, True]
    assert (await service.get(challenge.id, GUILD)).phase == ChallengePhase.VOTING

    sweeper_and_host = await asyncio.gather(
        service.transition(challenge.id, ChallengePhase.VOTING, ChallengePhase.CLOSED),
        service.transition(challenge.id, ChallengePhase.VOTING, ChallengePhase.CANCELLED))
    assert sorted(sweeper_and_host) == [False, True]
    assert (await service.get(challenge.id, GUILD)).phase in (ChallengePhase.CLOSED, ChallengePhase.CANCELLED)


async def test_a_transition_the_phase_machine_forbids_raises(service, clock):
    challenge = await new_challenge(service)
    with pytest.raises(ValueError, match="cannot go from closed to voting"):
        await service.transition(challenge.id, ChallengePhase.CLOSED, ChallengePhase.VOTING)
    with pytest.raises(ValueError):
        await service.transition(challenge.id, ChallengePhase.VOTING, ChallengePhase.OPEN)
    with pytest.raises(ValueError):
        await service.transition(challenge.id, ChallengePhase.CANCELLED, ChallengePhase.OPEN)
    assert (await service.get(challenge.id, GUILD)).phase == ChallengePhase.OPEN
    # Allowed, but from a phase it is not in: nothing changes.
    assert await service.transition(challenge.id, ChallengePhase.VOTING, ChallengePhase.CLOSED) is False
    assert (await service.get(challenge.id, GUILD)).phase == ChallengePhase.OPEN


async def test_opening_the_vote_numbers_the_entries_1_to_n_reproducibly(service, sessions, clock):
    challenge = await new_challenge(service)
    for user_id in range(20, 28):
        await enter(service, challenge, user_id)
    assert all(e.number is None for e in await service.entries(challenge.id))
    await to_voting(service, clock, challenge)
    entries = await service.entries(challenge.id)
    numbers = {e.id: e.number for e in entries}
    assert [e.number for e in entries] == list(range(1, 9))  # unique, 1..N, and listed in that order
    assert [e.id for e in entries] != sorted(numbers)  # shuffled: the order of entry would hint at authors

    async with sessions.begin() as session:  # as if a restart had to take the same step again
        await session.execute(update(ChallengeEntry).values(number=None))
        await session.execute(update(Challenge).values(phase=ChallengePhase.OPEN))
    assert await service.transition(challenge.id, ChallengePhase.OPEN, ChallengePhase.VOTING)
    assert {e.id: e.number for e in await service.entries(challenge.id)} == numbers


async def test_advance_follows_the_deadlines(service, clock):
    empty = await new_challenge(service, title="Empty")
    entered = await new_challenge(service, title="Entered")
    await enter(service, entered, ADA)
    assert (await service.advance(empty)).phase == ChallengePhase.OPEN  # not due yet
    clock.now = empty.submissions_close_at
    closed = await service.advance(empty)
    assert closed.phase == ChallengePhase.CLOSED and closed.ended_at == clock.now  # nobody entered: no vote
    voting = await service.advance(entered)
    assert voting.phase == ChallengePhase.VOTING and voting.ended_at is None
    assert (await service.advance(voting)).phase == ChallengePhase.VOTING
    clock.now = voting.voting_close_at
    done = await service.advance(voting)
    assert done.phase == ChallengePhase.CLOSED and done.ended_at == voting.voting_close_at
    assert (await service.advance(done)).phase == ChallengePhase.CLOSED


async def test_needing_work_lists_due_and_unpublished_challenges(service, clock):
    early = await new_challenge(service, title="Early", submissions_close="in 2 days")
    late = await new_challenge(service, title="Late", submissions_close="in 4 days")
    assert [c.id for c in await service.needing_work()] == [early.id, late.id]  # nothing posted yet

    await service.mark_published(early.id, ChallengePhase.OPEN)
    await service.mark_published(late.id, ChallengePhase.VOTING)  # a stale phase marks nothing
    assert [c.id for c in await service.needing_work()] == [late.id]
    assert (await service.get(late.id, GUILD)).published_phase is None
    await service.mark_published(late.id, ChallengePhase.OPEN)
    assert await service.needing_work() == []  # published and not due

    await enter(service, early, ADA)
    clock.now = early.submissions_close_at  # due, though still open
    due = await service.needing_work()
    assert [(c.id, c.phase) for c in due] == [(early.id, ChallengePhase.OPEN)]
    await service.advance(due[0])
    work = await service.needing_work()
    assert [(c.id, c.phase, c.published_phase) for c in work] == [
        (early.id, ChallengePhase.VOTING, ChallengePhase.OPEN)]  # its voting posts are not out yet
    await service.mark_published(early.id, ChallengePhase.VOTING)
    assert await service.needing_work() == []
    clock.now = late.submissions_close_at + timedelta(seconds=1)
    assert [c.id for c in await service.needing_work()] == [late.id]


async def test_end_phase_now_opens_voting_then_closes_it(service, clock):
    challenge = await new_challenge(service)
    await enter(service, challenge, ADA)
    await enter(service, challenge, BO)
    with pytest.raises(UserFacingError, match="There is no challenge"):
        await service.end_phase_now(challenge.id, OTHER_GUILD)
    clock.advance(hours=1)
    voting = await service.end_phase_now(challenge.id, GUILD)
    assert voting.phase == ChallengePhase.VOTING and voting.submissions_close_at == clock.now
    assert voting.voting_close_at == challenge.voting_close_at  # only the ended phase moves
    assert sorted(e.number for e in await service.entries(challenge.id)) == [1, 2]
    with pytest.raises(UserFacingError, match="closed"):
        await enter(service, challenge, CY)

    clock.advance(hours=1)
    entries = await by_author(service, challenge)
    await service.vote(entries[ADA].id, GUILD, CY)
    closed = await service.end_phase_now(challenge.id, GUILD)
    assert closed.phase == ChallengePhase.CLOSED
    assert closed.voting_close_at == clock.now and closed.ended_at == clock.now
    with pytest.raises(UserFacingError, match="already closed"):
        await service.end_phase_now(challenge.id, GUILD)

    nobody = await new_challenge(service, title="Nobody")
    assert (await service.end_phase_now(nobody.id, GUILD)).phase == ChallengePhase.CLOSED


async def test_cancel_stops_a_running_challenge_only(service, clock):
    open_one = await new_challenge(service, title="Open")
    cancelled = await service.cancel(open_one.id, GUILD)
    assert cancelled.phase == ChallengePhase.CANCELLED and cancelled.ended_at == NOW
    with pytest.raises(UserFacingError, match="is cancelled; only a running challenge"):
        await service.cancel(open_one.id, GUILD)
    with pytest.raises(UserFacingError, match="is cancelled; it takes no more entries"):
        await enter(service, open_one, ADA)

    voting = await new_challenge(service, title="Voting")
    await enter(service, voting, ADA)
    voting = await to_voting(service, clock, voting)
    assert (await service.cancel(voting.id, GUILD)).phase == ChallengePhase.CANCELLED
    entry = (await service.entries(voting.id))[0]
    with pytest.raises(UserFacingError, match="was cancelled, so there is nothing to vote on"):
        await service.vote(entry.id, GUILD, BO)

    closed = await new_challenge(service, title="Closed")
    await service.end_phase_now(closed.id, GUILD)
    with pytest.raises(UserFacingError, match="is closed; only a running challenge"):
        await service.cancel(closed.id, GUILD)
    with pytest.raises(UserFacingError, match="There is no challenge"):
        await service.cancel(voting.id, OTHER_GUILD)


async def test_posts_are_recorded(service, sessions):
    challenge = await new_challenge(service)
    entry = (await enter(service, challenge, ADA)).entry
    await service.record_posts(challenge.id, announcement_message_id=1, thread_id=2)
    await service.record_entry_post(entry.id, 3)
    stored = await service.get(challenge.id, GUILD)
    assert (stored.announcement_message_id, stored.thread_id, stored.voting_sheet_message_id) == (1, 2, None)
    assert (await service.entries(challenge.id))[0].vote_message_id == 3


async def test_only_a_challenge_never_announced_in_full_can_be_discarded(service):
    half = await new_challenge(service, title="Half")
    await service.record_posts(half.id, announcement_message_id=5)  # announced, its thread refused
    assert await service.discard_unannounced(half.id) == 5
    with pytest.raises(UserFacingError, match="no challenge"):
        await service.get(half.id, GUILD)

    running = await new_challenge(service, title="Running")
    await service.record_posts(running.id, announcement_message_id=6, thread_id=7)
    await service.mark_published(running.id, ChallengePhase.OPEN)
    assert await service.discard_unannounced(running.id) is None
    assert (await service.get(running.id, GUILD)).title == "Running"


# --- votes --------------------------------------------------------------------------------------------------


async def voting_challenge(service, clock, *authors: int, **changes: object) -> tuple[Challenge,
                                                                                       dict[int, ChallengeEntry]]:
    challenge = await new_challenge(service, **changes)
    for author in authors:
        await enter(service, challenge, author)
    challenge = await to_voting(service, clock, challenge)
    return challenge, await by_author(service, challenge)


async def test_a_vote_can_be_cast_moved_and_repeated(service, sessions, clock):
    challenge, entries = await voting_challenge(service, clock, ADA, BO)
    first = await service.vote(entries[ADA].id, GUILD, CY)
    assert (first.number, first.previous_number) == (entries[ADA].number, None)
    assert await service.votes_of(challenge.id, CY) == entries[ADA].number

    moved = await service.vote(entries[BO].id, GUILD, CY)
    assert (moved.number, moved.previous_number) == (entries[BO].number, entries[ADA].number)
    again = await service.vote(entries[BO].id, GUILD, CY)  # the same entry again changes nothing
    assert again.number == entries[BO].number
    async with sessions() as session:
        votes = list(await session.scalars(select(ChallengeVote)))
    assert [(v.voter_id, v.entry_id) for v in votes] == [(CY, entries[BO].id)]
    assert await service.votes_of(challenge.id, DEE) is None
    standings = {s.entry.user_id: s.votes for s in await service.standings(challenge.id)}
    assert standings == {ADA: 0, BO: 1}


async def test_votes_are_refused_outside_voting_and_on_your_own_entry(service, sessions, clock):
    waiting = await new_challenge(service, title="Waiting")
    early = (await enter(service, waiting, ADA)).entry
    with pytest.raises(UserFacingError, match="Voting on \\*\\*Waiting\\*\\* opens"):
        await service.vote(early.id, GUILD, BO)

    challenge, entries = await voting_challenge(service, clock, ADA, BO, title="Running")
    with pytest.raises(UserFacingError, match="your own entry"):
        await service.vote(entries[ADA].id, GUILD, ADA)
    for elsewhere in (OTHER_GUILD, None):  # another server, or a direct message
        with pytest.raises(UserFacingError, match="Only members of the server that runs this challenge"):
            await service.vote(entries[ADA].id, elsewhere, CY)
    with pytest.raises(UserFacingError, match="no longer in the challenge"):
        await service.vote(123456, GUILD, CY)
    await service.vote(entries[ADA].id, GUILD, CY)

    clock.now = challenge.voting_close_at  # past the deadline, before any sweep
    assert (await service.get(challenge.id, GUILD)).phase == ChallengePhase.VOTING
    with pytest.raises(UserFacingError, match="has closed"):
        await service.vote(entries[ADA].id, GUILD, DEE)
    with pytest.raises(UserFacingError, match="has closed"):
        await service.vote(entries[BO].id, GUILD, CY)  # nor may a vote move
    await service.advance(challenge)
    with pytest.raises(UserFacingError, match="has closed"):
        await service.vote(entries[ADA].id, GUILD, DEE)
    async with sessions() as session:
        assert [(v.voter_id, v.entry_id) for v in await session.scalars(select(ChallengeVote))] == [
            (CY, entries[ADA].id)]


async def test_a_hundred_members_voting_at_once_are_each_counted_once(service, sessions, clock):
    challenge, entries = await voting_challenge(service, clock, ADA, BO)
    voters = range(1000, 1100)
    receipts = await asyncio.gather(*(service.vote(entries[ADA].id, GUILD, voter) for voter in voters))
    assert all(r.previous_number is None for r in receipts)
    assert {s.entry.user_id: s.votes for s in await service.standings(challenge.id)} == {ADA: 100, BO: 0}

    movers = range(1000, 1050)
    moved = await asyncio.gather(*(service.vote(entries[BO].id, GUILD, voter) for voter in movers))
    assert {r.previous_number for r in moved} == {entries[ADA].number}
    assert {s.entry.user_id: s.votes for s in await service.standings(challenge.id)} == {ADA: 50, BO: 50}
    async with sessions() as session:
        rows = (await session.execute(select(ChallengeVote.voter_id, func.count()).group_by(ChallengeVote.voter_id)
                                      )).all()
    assert len(rows) == 100 and {n for _, n in rows} == {1}


async def test_the_database_keeps_one_vote_per_member_and_one_entry_per_slot(service, sessions, clock):
    challenge, entries = await voting_challenge(service, clock, ADA, BO)
    await service.vote(entries[ADA].id, GUILD, CY)
    async with sessions() as session:
        session.add(ChallengeVote(challenge_id=challenge.id, voter_id=CY, entry_id=entries[BO].id))
        with pytest.raises(IntegrityError):
            await session.commit()
    async with sessions() as session:
        session.add(ChallengeEntry(challenge_id=challenge.id, user_id=ADA, slot=1))
        with pytest.raises(IntegrityError):
            await session.commit()
    async with sessions() as session:
        session.add(ChallengeEntry(challenge_id=challenge.id, user_id=DEE, slot=1, number=entries[BO].number))
        with pytest.raises(IntegrityError):
            await session.commit()
    assert await count(sessions, ChallengeVote) == 1 and await count(sessions, ChallengeEntry) == 2


# --- results ------------------------------------------------------------------------------------------------


async def test_standings_rank_by_live_votes_with_shared_places(service, sessions, clock):
    challenge, entries = await voting_challenge(service, clock, ADA, BO, CY, DEE)
    for voter, author in [(100, ADA), (101, ADA), (102, BO), (103, BO), (104, CY)]:
        await service.vote(entries[author].id, GUILD, voter)
    standings = await service.standings(challenge.id)
    table = [(s.author_name, s.votes, s.place, s.points) for s in standings]
    assert [row[1:] for row in table] == [(2, 1, 3), (2, 1, 3), (1, 3, 1), (0, 4, 0)]
    assert {row[0] for row in table[:2]} == {"Ada", "Bo"} and [r[0] for r in table[2:]] == ["Cy", "Dee"]
    tied = [s.entry.number for s in standings[:2]]
    assert tied == sorted(tied)  # a tie keeps the public order

    async with sessions.begin() as session:  # a voter asked to be forgotten: their vote goes, counts follow
        await session.execute(delete(ChallengeVote).where(ChallengeVote.voter_id == 100))
    after = await service.standings(challenge.id)
    tied = sorted([ADA, CY], key=lambda author: entries[author].number)  # a tie keeps the public order
    assert [(s.entry.user_id, s.votes, s.place, s.points) for s in after] == [
        (BO, 2, 1, 3), (tied[0], 1, 2, 2), (tied[1], 1, 2, 2), (DEE, 0, 4, 0)]


async def test_the_leaderboard_counts_closed_challenges_only_and_follows_the_votes(service, sessions, clock):
    first = await new_challenge(service, title="First")
    second = await new_challenge(service, title="Second")
    cancelled = await new_challenge(service, title="Cancelled")
    still_open = await new_challenge(service, title="Open", submissions_close="in 20 days",
                                     voting_close="in 30 days")
    for challenge, authors in [(first, (ADA, BO, CY, DEE)), (second, (ADA, BO)), (cancelled, (DEE, CY)),
                               (still_open, (DEE,))]:
        for author in authors:
            await enter(service, challenge, author)
    clock.now = first.submissions_close_at
    for challenge in (first, second, cancelled):
        await service.advance(challenge)
    one, two, gone = [await by_author(service, c) for c in (first, second, cancelled)]
    for voter, entry in [(100, one[ADA]), (101, one[ADA]), (102, one[BO]), (103, one[BO]), (104, one[CY]),
                         (105, two[BO]), (100, gone[DEE]), (101, gone[DEE])]:
        await service.vote(entry.id, GUILD, voter)
    await service.cancel(cancelled.id, GUILD)
    assert await service.leaderboard(GUILD) == []  # nothing closed yet
    clock.now = first.voting_close_at
    for challenge in (first, second):
        assert (await service.advance(await service.get(challenge.id, GUILD))).phase == ChallengePhase.CLOSED

    board = [(r.name, r.points, r.entered, r.won) for r in await service.leaderboard(GUILD)]
    assert board == [("Bo", 6, 2, 2), ("Ada", 3, 2, 1), ("Cy", 1, 1, 0), ("Dee", 0, 1, 0)]
    assert await service.leaderboard(OTHER_GUILD) == []

    async with sessions.begin() as session:  # voter 105 is forgotten: Second ends in a 0-0 tie, no one wins
        await session.execute(delete(ChallengeVote).where(ChallengeVote.voter_id == 105))
    board = [(r.user_id, r.points, r.entered, r.won) for r in await service.leaderboard(GUILD)]
    assert board == [(ADA, 3, 2, 1), (BO, 3, 2, 1), (CY, 1, 1, 0), (DEE, 0, 1, 0)]


async def test_thevote_statement_itself_refuses_what_the_checks_before_it_refuse(service, clock, sessions):
    """The guarded INSERT is what holds when a phase changes between the read and the write."""
    challenge, entries = await voting_challenge(service, clock, ADA, BO, title="Raced")

    async def counted(entry_id: int, guild_id: int, voter_id: int, now) -> int:
        async with sessions.begin() as session:
            result = await session.execute(vote_statement(session.bind.dialect.name, entry_id, guild_id, voter_id, now))
        return result.rowcount

    assert await counted(entries[ADA].id, GUILD, ADA, clock()) == 0  # her own entry
    assert await counted(entries[ADA].id, OTHER_GUILD, BO, clock()) == 0  # another server
    assert await counted(entries[ADA].id, GUILD, BO, challenge.voting_close_at) == 0  # the deadline passed
    assert await counted(entries[ADA].id, GUILD, BO, clock()) == 1
    assert await counted(entries[BO].id, GUILD, CY, clock()) == 1
    assert await counted(entries[ADA].id, GUILD, CY, clock()) == 1  # moved, not added
    await service.transition(challenge.id, ChallengePhase.VOTING, ChallengePhase.CLOSED)
    assert await counted(entries[BO].id, GUILD, ADA, clock()) == 0  # closed
    standings = {s.entry.user_id: s.votes for s in await service.standings(challenge.id)}
    assert standings == {ADA: 2, BO: 0}


async def test_a_vote_racing_the_close_is_refused_and_not_counted(service, clock):
    challenge, entries = await voting_challenge(service, clock, ADA, BO, title="Raced")
    real_sessions = service.sessions

    class ClosingBeforeTheWrite:
        """The host closes the vote after the vote's checks have read the challenge, before its write."""

        def __call__(self):
            return real_sessions()

        @contextlib.asynccontextmanager
        async def begin(self):
            service.sessions = real_sessions
            await service.transition(challenge.id, ChallengePhase.VOTING, ChallengePhase.CLOSED)
            async with real_sessions.begin() as session:
                yield session

    service.sessions = ClosingBeforeTheWrite()
    with pytest.raises(UserFacingError, match="has closed"):
        await service.vote(entries[ADA].id, GUILD, BO)
    assert [s.votes for s in await service.standings(challenge.id)] == [0, 0]
