"""Ranking by votes: ties share a place and skip the next, the top three places earn 3, 2 and 1 points."""

from __future__ import annotations

from bot.challenges.ranking import POINTS_BY_PLACE, rank


def test_ties_share_a_place_and_the_next_place_skips_past_them():
    ranked = rank([("a", 5), ("b", 5), ("c", 3), ("d", 0)])
    assert [(r.item, r.votes, r.place, r.points) for r in ranked] == [
        ("a", 5, 1, 3), ("b", 5, 1, 3), ("c", 3, 3, 1), ("d", 0, 4, 0)]


def test_most_votes_first_and_points_for_places_one_to_three():
    ranked = rank([("few", 1), ("most", 9), ("some", 4), ("more", 6), ("fewer", 0)])
    assert [r.item for r in ranked] == ["most", "more", "some", "few", "fewer"]
    assert [r.place for r in ranked] == [1, 2, 3, 4, 5]
    assert [r.points for r in ranked] == [3, 2, 1, 0, 0]
    assert POINTS_BY_PLACE == {1: 3, 2: 2, 3: 1}


def test_a_tie_for_second_gives_both_second_place_points():
    ranked = rank([("a", 4), ("b", 2), ("c", 2), ("d", 1)])
    assert [(r.place, r.points) for r in ranked] == [(1, 3), (2, 2), (2, 2), (4, 0)]


def test_zero_votes_earn_no_points_even_in_first_place():
    ranked = rank([("a", 0), ("b", 0), ("c", 0)])
    assert [(r.place, r.points) for r in ranked] == [(1, 0), (1, 0), (1, 0)]
    ranked = rank([("a", 1), ("b", 0)])
    assert [(r.item, r.place, r.points) for r in ranked] == [("a", 1, 3), ("b", 2, 0)]  # second, but no votes


def test_ties_keep_the_order_they_were_given_in():
    given = [(f"entry-{i}", 2 if i % 2 else 7) for i in range(10)]
    ranked = rank(given)
    assert [r.item for r in ranked] == [f"entry-{i}" for i in range(0, 10, 2)] + [f"entry-{i}" for i in range(1, 10, 2)]
    assert [r.item for r in rank(list(reversed(given)))][:5] == [f"entry-{i}" for i in range(8, -1, -2)]


def test_nothing_to_rank():
    assert rank([]) == []
