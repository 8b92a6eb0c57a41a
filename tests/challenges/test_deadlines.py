"""Deadlines as hosts type them, read relative to a fixed now and stored in UTC, and the checks on a pair."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.challenges.deadlines import check_deadlines, parse_deadline
from bot.errors import UserFacingError

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)  # a Saturday, noon UTC


@pytest.mark.parametrize(("text", "expected"), [
    ("in 3 days", datetime(2026, 12, 8, 12, 0, tzinfo=UTC)),
    ("friday 18:00", datetime(2026, 12, 11, 18, 0, tzinfo=UTC)),  # the coming Friday, not the one past
    ("tomorrow 9am", datetime(2026, 12, 6, 9, 0, tzinfo=UTC)),
    ("2026-12-24 18:00", datetime(2026, 12, 24, 18, 0, tzinfo=UTC)),  # no zone: read as UTC
    ("2026-12-24 18:00+01:00", datetime(2026, 12, 24, 17, 0, tzinfo=UTC)),
    ("2026-12-24T18:00:00-05:00", datetime(2026, 12, 24, 23, 0, tzinfo=UTC)),
])
def test_deadlines_are_read_relative_to_now_and_stored_in_utc(text, expected):
    parsed = parse_deadline(text, NOW)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(("text", "expected"), [
    ("friday 18:00", datetime(2026, 12, 11, 18, 0, tzinfo=UTC)),  # this evening, not next week
    ("fri 6pm", datetime(2026, 12, 11, 18, 0, tzinfo=UTC)),
    ("friday 9:00", datetime(2026, 12, 18, 9, 0, tzinfo=UTC)),  # this morning has passed: next week
    ("friday", datetime(2026, 12, 18, 0, 0, tzinfo=UTC)),
    ("next friday 18:00", datetime(2026, 12, 18, 18, 0, tzinfo=UTC)),
    ("saturday 10:00", datetime(2026, 12, 12, 10, 0, tzinfo=UTC)),
])
def test_a_weekday_named_on_that_day_means_the_nearest_one_still_ahead(text, expected):
    friday_morning = datetime(2026, 12, 11, 10, 0, tzinfo=UTC)
    assert parse_deadline(text, friday_morning) == expected


def test_relative_deadlines_count_from_now_whatever_its_zone():
    in_paris = NOW.astimezone(timezone(timedelta(hours=1)))  # 13:00 there: the same moment
    assert parse_deadline("in 3 days", in_paris) == datetime(2026, 12, 8, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("text", ["banana soup", "", "   ", "???", "whenever you like"])
def test_unreadable_deadlines_are_refused_with_examples(text):
    with pytest.raises(UserFacingError) as refused:
        parse_deadline(text, NOW)
    message = str(refused.value)
    assert "could not read" in message
    assert "`in 3 days`" in message and "`friday 18:00`" in message


def test_a_good_pair_of_deadlines_passes():
    check_deadlines(NOW + timedelta(minutes=1), NOW + timedelta(minutes=2), NOW)  # the shortest allowed
    check_deadlines(NOW + timedelta(days=3), NOW + timedelta(days=366), NOW)  # the longest allowed


@pytest.mark.parametrize(("submissions", "voting", "says"), [
    (NOW - timedelta(minutes=5), NOW + timedelta(days=1), "already passed"),
    (NOW, NOW + timedelta(days=1), "already passed"),
    (NOW + timedelta(seconds=30), NOW + timedelta(days=1), "at least a minute"),
    (NOW + timedelta(days=2), NOW + timedelta(days=1), "Voting must close after entries close"),
    (NOW + timedelta(days=2), NOW + timedelta(days=2), "Voting must close after entries close"),
    (NOW + timedelta(days=2), NOW + timedelta(days=2, seconds=59), "Give voters at least a minute"),
    (NOW + timedelta(days=2), NOW + timedelta(days=366, seconds=1), "a year at most"),
    (NOW + timedelta(days=400), NOW + timedelta(days=401), "a year at most"),
])
def test_bad_pairs_of_deadlines_are_refused(submissions, voting, says):
    with pytest.raises(UserFacingError, match=says):
        check_deadlines(submissions, voting, NOW)
