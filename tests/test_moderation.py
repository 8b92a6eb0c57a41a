import asyncio
import logging
import threading

import pytest
import regex

import bot.moderation as moderation_module
from bot.errors import UserFacingError
from bot.moderation import MAX_LOGGED_PROMPT_CHARS, ModerationService, ModerationTimedOut, TermKind
from tests.postgres import both_engines

pytestmark = both_engines

GUILD = 1
OTHER_GUILD = 2
HOST = 10


@pytest.fixture
def moderation(sessions) -> ModerationService:
    return ModerationService(sessions)


async def test_words_match_whole_words_in_any_case(moderation):
    await moderation.add_term(GUILD, "word", "Ass", HOST)

    assert await moderation.check(GUILD, "a photo of an ASS in a field") == "ass"
    assert await moderation.check(GUILD, "ass, oil painting") == "ass"
    assert await moderation.check(GUILD, "a class of students") is None
    assert await moderation.check(GUILD, "bass guitar, assorted colours") is None


async def test_words_see_through_simple_obfuscation(moderation):
    await moderation.add_term(GUILD, "word", "bad word", HOST)

    assert await moderation.check(GUILD, "a BAD    word here") == "bad word"
    assert await moderation.check(GUILD, "bad-word, bad_word") == "bad word"
    assert await moderation.check(GUILD, "ｂａｄ ｗｏｒｄ") == "bad word"  # fullwidth letters, folded by NFKC
    assert await moderation.check(GUILD, "bad wo\u200brd") == "bad word"  # zero-width space
    assert await moderation.check(GUILD, "a b a d w o r d") == "bad word"
    assert await moderation.check(GUILD, "bad words") is None
    assert await moderation.check(GUILD, "bad, then a word") is None


async def test_phrase_is_stored_normalised(moderation):
    term = await moderation.add_term(GUILD, "word", "  Bad   WORD ", HOST)

    assert (term.kind, term.value, term.added_by) == (TermKind.WORD, "bad word", HOST)


async def test_patterns_match_anywhere_case_insensitively(moderation):
    await moderation.add_term(GUILD, "pattern", r"n[i1!]ght\s*mare", HOST)

    assert await moderation.check(GUILD, "a N1GHT MARE in the woods") == r"n[i1!]ght\s*mare"
    assert await moderation.check(GUILD, "nightmares") == r"n[i1!]ght\s*mare"
    assert await moderation.check(GUILD, "a night at the mare's") is None


async def test_patterns_with_repeats_that_cannot_compete_are_accepted(moderation):
    for pattern in (r"\bkill\s+\w+", r"b+a+d+", r"foo.*bar"):
        await moderation.add_term(GUILD, "pattern", pattern, HOST)

    assert await moderation.check(GUILD, "BAAADDD") == "b+a+d+"


async def test_long_texts_are_checked_whole(moderation):
    await moderation.add_term(GUILD, "word", "gore", HOST)
    await moderation.add_term(GUILD, "pattern", r"n[i1]ghtmare", HOST)
    padding = "a quiet field, " * 400  # 6,000 characters, an option's most

    assert await moderation.check(GUILD, "a cat --negative gore --steps 20") == "gore"
    assert await moderation.check(GUILD, padding + "gore") == "gore"
    assert await moderation.check(GUILD, padding + "n1ghtmare") == r"n[i1]ghtmare"


async def test_check_texts_checks_each_text_on_its_own(moderation):
    await moderation.add_term(GUILD, "word", "bad word", HOST)
    await moderation.add_term(GUILD, "pattern", r"n[i1]ghtmare", HOST)

    assert await moderation.check_texts(GUILD, ["a cat", "", "a BAD word"]) == "bad word"
    assert await moderation.check_texts(GUILD, ["a cat", "title", "a nightmare"]) == r"n[i1]ghtmare"
    assert await moderation.check_texts(GUILD, ["a bad", "word"]) is None  # no term across two texts
    assert await moderation.check_texts(GUILD, []) is None


@pytest.mark.parametrize(
    ("pattern", "advice"),
    [
        ("[unclosed", "not a valid regular expression: unterminated character set"),
        ("(a+)+", "Remove the inner or the outer quantifier"),
        (r"\w+\s*\w+", "can match the same characters"),
        (".*foo.*bar", "rather than `.*foo.*bar`"),
        ("x*", "would block every prompt"),
        ("a" * 201, "keep it to 200"),
    ],
)
async def test_bad_patterns_are_refused_with_advice(moderation, pattern, advice):
    with pytest.raises(UserFacingError, match=advice):
        await moderation.add_term(GUILD, "pattern", pattern, HOST)
    assert await moderation.list_terms(GUILD) == []


async def test_a_word_needs_a_letter_or_digit(moderation):
    with pytest.raises(UserFacingError, match="at least one letter or digit"):
        await moderation.add_term(GUILD, "word", " -- ", HOST)


async def test_duplicates_are_refused(moderation):
    await moderation.add_term(GUILD, "word", "gore", HOST)
    await moderation.add_term(GUILD, "pattern", "gore", HOST)  # another kind is another term

    with pytest.raises(UserFacingError, match="already blocked"):
        await moderation.add_term(GUILD, "word", "GORE", HOST)
    assert len(await moderation.list_terms(GUILD)) == 2


async def test_remove_and_list(moderation):
    await moderation.add_term(GUILD, "word", "gore", HOST)
    await moderation.add_term(GUILD, "pattern", "blood+", HOST)

    assert [(t.kind, t.value) for t in await moderation.list_terms(GUILD)] == [
        ("pattern", "blood+"),
        ("word", "gore"),
    ]
    assert await moderation.remove_term(GUILD, "word", "Gore") is True
    assert await moderation.remove_term(GUILD, "word", "gore") is False
    assert [t.value for t in await moderation.list_terms(GUILD)] == ["blood+"]


async def test_guilds_are_isolated(moderation):
    await moderation.add_term(GUILD, "word", "gore", HOST)
    await moderation.add_term(OTHER_GUILD, "word", "gore", HOST)  # not a duplicate: another guild

    assert await moderation.check(GUILD, "gore") == "gore"
    assert await moderation.check(3, "gore") is None
    assert await moderation.remove_term(OTHER_GUILD, "word", "gore") is True
    assert await moderation.check(GUILD, "gore") == "gore"
    assert await moderation.check(OTHER_GUILD, "gore") is None


async def test_the_cache_sees_adds_and_removes(moderation):
    assert await moderation.check(GUILD, "gore") is None  # caches "nothing blocked"

    await moderation.add_term(GUILD, "word", "gore", HOST)
    assert await moderation.check(GUILD, "gore") == "gore"

    await moderation.remove_term(GUILD, "word", "gore")
    assert await moderation.check(GUILD, "gore") is None


async def test_refusals_are_logged_and_listed_newest_first(moderation):
    for n in range(3):
        await moderation.log_refusal(GUILD, user_id=100 + n, channel_id=7, prompt=f"gore {n}", matched="gore")
    await moderation.log_refusal(OTHER_GUILD, user_id=5, channel_id=8, prompt="x", matched="x")

    refusals = await moderation.recent_refusals(GUILD)
    assert [r.prompt for r in refusals] == ["gore 2", "gore 1", "gore 0"]
    assert (refusals[0].user_id, refusals[0].channel_id, refusals[0].matched) == (102, 7, "gore")
    assert refusals[0].created_at.tzinfo is not None
    assert [r.prompt for r in await moderation.recent_refusals(GUILD, limit=1)] == ["gore 2"]


async def test_adding_past_the_cap_is_refused_until_one_is_removed(sessions):
    service = ModerationService(sessions, max_terms=3)
    await service.add_term(GUILD, "word", "gore", HOST)
    await service.add_term(GUILD, "word", "blood", HOST)
    await service.add_term(GUILD, "pattern", "sk[u]ll", HOST)
    await service.add_term(OTHER_GUILD, "word", "gore", HOST)  # the cap is per guild

    with pytest.raises(UserFacingError, match=r"already blocks 3 .* limit is 3\. Remove one"):
        await service.add_term(GUILD, "word", "bones", HOST)
    assert len(await service.list_terms(GUILD)) == 3

    await service.remove_term(GUILD, "word", "blood")
    await service.add_term(GUILD, "word", "bones", HOST)
    assert await service.check(GUILD, "bones") == "bones"


async def test_concurrent_adds_do_not_pass_the_cap(sessions):
    service = ModerationService(sessions, max_terms=3)

    results = await asyncio.gather(
        *(service.add_term(GUILD, "word", f"word{n}", HOST) for n in range(6)), return_exceptions=True
    )

    assert sum(isinstance(result, UserFacingError) for result in results) == 3
    assert len(await service.list_terms(GUILD)) == 3


async def test_a_runaway_pattern_runs_out_of_budget_and_refuses_the_prompt(sessions, caplog):
    service = ModerationService(sessions, budget_seconds=0.05)
    await service.add_term(GUILD, "pattern", r"(a|aa)+b", HOST)  # exponential backtracking on "aaaa...c"

    with caplog.at_level(logging.WARNING, logger="bot.moderation"), pytest.raises(ModerationTimedOut) as caught:
        await service.check_texts(GUILD, ["a" * 60 + "c"])

    assert "took too long, so it was not queued" in str(caught.value)
    assert "shorten the prompt" in str(caught.value)
    assert isinstance(caught.value, UserFacingError)
    assert f"guild {GUILD}:" in caplog.text and "(a|aa)+b" in caplog.text


class _FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


class _SlowPattern:
    """Stands in for a compiled pattern: takes a quarter of a (fake) second to match nothing."""

    def __init__(self, source: str, clock: _FakeClock, calls: list[tuple[str, float]]) -> None:
        self.source, self.clock, self.calls = source, clock, calls

    def search(self, text: str, *, timeout: float, concurrent: bool) -> None:
        self.calls.append((self.source, timeout))
        self.clock.now += 0.25


async def test_all_patterns_share_one_budget_and_stop_when_it_is_spent(sessions, monkeypatch):
    clock, calls = _FakeClock(), []
    monkeypatch.setattr(moderation_module, "time", clock)
    monkeypatch.setattr(regex, "compile", lambda source, flags: _SlowPattern(source, clock, calls))
    service = ModerationService(sessions, budget_seconds=1.0)
    for n in range(6):
        await service.add_term(GUILD, "pattern", f"slow{n}", HOST)

    with pytest.raises(ModerationTimedOut) as caught:
        await service.check_texts(GUILD, ["a cat"])

    # Each pattern gets what the ones before it left; the fifth finds nothing left and is not run.
    assert calls == [("slow0", 1.0), ("slow1", 0.75), ("slow2", 0.5), ("slow3", 0.25)]
    assert caught.value.pattern == "slow4"


async def test_a_check_that_has_spent_its_budget_on_words_runs_no_pattern(sessions):
    service = ModerationService(sessions, budget_seconds=1e-9)
    await service.add_term(GUILD, "word", "gore", HOST)
    await service.add_term(GUILD, "pattern", "sk[u]ll", HOST)

    with pytest.raises(ModerationTimedOut):
        await service.check_texts(GUILD, ["a cat " * 1000])


async def test_matching_runs_in_a_worker_thread(sessions, monkeypatch):
    threads = []
    real_first_match = moderation_module._first_match

    def recording(*args):
        threads.append(threading.get_ident())
        return real_first_match(*args)

    monkeypatch.setattr(moderation_module, "_first_match", recording)
    service = ModerationService(sessions)
    await service.add_term(GUILD, "word", "gore", HOST)

    assert await service.check(GUILD, "gore") == "gore"
    assert threads and threads[0] != threading.get_ident()


async def test_the_loop_keeps_running_while_a_slow_pattern_is_matched(sessions):
    service = ModerationService(sessions, budget_seconds=0.5)
    await service.add_term(GUILD, "pattern", r"(a|aa)+b", HOST)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    with pytest.raises(ModerationTimedOut):
        await service.check(GUILD, "a" * 60 + "c")
    ticker.cancel()

    # 0.5 s of matching leaves time for about 50 ticks; a loop held up by the match gets one at most.
    assert ticks >= 10


async def test_terms_are_compiled_once_per_change(sessions, monkeypatch):
    compiled = []
    real_compile = regex.compile

    def counting(source, flags):
        compiled.append(source)
        return real_compile(source, flags)

    monkeypatch.setattr(regex, "compile", counting)
    service = ModerationService(sessions)
    await service.add_term(GUILD, "pattern", "sk[u]ll", HOST)
    await service.add_term(GUILD, "pattern", "bl[o]od", HOST)

    await asyncio.gather(*(service.check(GUILD, "a skull") for _ in range(5)))
    assert await service.check(GUILD, "a cat") is None
    assert sorted(compiled) == ["bl[o]od", "sk[u]ll"]

    await service.remove_term(GUILD, "pattern", "bl[o]od")
    assert await service.check(GUILD, "blood") is None
    assert await service.check(GUILD, "skull") == "sk[u]ll"
    assert sorted(compiled) == ["bl[o]od", "sk[u]ll", "sk[u]ll"]


async def test_a_load_racing_a_change_is_not_cached(sessions, monkeypatch):
    loading, release = threading.Event(), threading.Event()
    real_compile_terms = moderation_module._compile_terms

    def slow_compile_terms(terms):
        loading.set()
        release.wait(5)
        return real_compile_terms(terms)

    monkeypatch.setattr(moderation_module, "_compile_terms", slow_compile_terms)
    service = ModerationService(sessions)
    checking = asyncio.create_task(service.check(GUILD, "gore"))  # loads "nothing blocked"
    await asyncio.to_thread(loading.wait, 5)
    adding = asyncio.create_task(service.add_term(GUILD, "word", "gore", HOST))
    await asyncio.wait([adding], timeout=0.2)  # unchecked, the add commits while the load is still going
    release.set()

    assert await checking is None
    await adding
    assert await service.check(GUILD, "gore") == "gore"


async def test_the_refusal_log_keeps_the_latest_per_guild(moderation, monkeypatch):
    monkeypatch.setattr(moderation_module, "KEPT_REFUSALS_PER_GUILD", 3)
    await moderation.log_refusal(OTHER_GUILD, user_id=5, channel_id=8, prompt="other", matched="x")
    for n in range(5):
        await moderation.log_refusal(GUILD, user_id=5, channel_id=7, prompt=f"gore {n}", matched="gore")

    assert [r.prompt for r in await moderation.recent_refusals(GUILD, limit=100)] == ["gore 4", "gore 3", "gore 2"]
    assert [r.prompt for r in await moderation.recent_refusals(OTHER_GUILD)] == ["other"]


async def test_the_refusal_log_shortens_long_prompts(moderation):
    refusal = await moderation.log_refusal(GUILD, user_id=5, channel_id=7, prompt="gore " * 1200, matched="gore")

    (stored,) = await moderation.recent_refusals(GUILD)
    assert len(stored.prompt) == len(refusal.prompt) == MAX_LOGGED_PROMPT_CHARS
    assert stored.prompt.startswith("gore gore") and stored.prompt.endswith("…")
