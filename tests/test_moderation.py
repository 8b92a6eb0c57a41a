import pytest

from bot.errors import UserFacingError
from bot.moderation import MAX_CHECKED_CHARS, ModerationService, TermKind

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


async def test_check_covers_the_whole_text_up_to_the_cap(moderation):
    await moderation.add_term(GUILD, "word", "gore", HOST)

    assert await moderation.check(GUILD, "a cat --negative gore --steps 20") == "gore"
    assert await moderation.check(GUILD, "x " * MAX_CHECKED_CHARS + "gore") is None


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


async def test_a_runaway_pattern_is_stopped_and_refuses_the_prompt(sessions, monkeypatch):
    import bot.moderation as moderation

    service = ModerationService(sessions)
    await service.add_term(1, "pattern", r"(a|aa)+b", added_by=5)  # exponential backtracking on "aaaa...c"
    monkeypatch.setattr(moderation, "PATTERN_TIMEOUT_SECONDS", 0.01)
    assert await service.check(1, "a" * 60 + "c") == r"(a|aa)+b"
