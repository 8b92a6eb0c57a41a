"""Ranking entries by votes: ties share a place (1, 1, 3), and the top three places earn points."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

POINTS_BY_PLACE = {1: 3, 2: 2, 3: 1}

Item = TypeVar("Item")


@dataclass(frozen=True)
class Ranked(Generic[Item]):
    item: Item
    votes: int
    place: int
    points: int


def rank(votes_by_item: Sequence[tuple[Item, int]]) -> list[Ranked[Item]]:
    """Most votes first. Equal votes share a place and the next place skips past them ("1, 1, 3"), as in
    sport. Places 1 to 3 earn 3, 2 and 1 points; an entry nobody voted for earns none."""
    ordered = sorted(votes_by_item, key=lambda pair: -pair[1])  # stable: ties keep the order given
    ranked: list[Ranked[Item]] = []
    for index, (item, votes) in enumerate(ordered):
        place = ranked[-1].place if ranked and ranked[-1].votes == votes else index + 1
        points = POINTS_BY_PLACE.get(place, 0) if votes > 0 else 0
        ranked.append(Ranked(item, votes, place, points))
    return ranked
