"""The registry of techniques, by the name people type (`/imagine`, `render cppn`)."""

from __future__ import annotations

from bot.art.technique import Technique
from bot.art.techniques import compare, cppn, dream, imagine, nca, style

TECHNIQUES: dict[str, Technique] = {
    module.TECHNIQUE.name: module.TECHNIQUE for module in (imagine, compare, style, dream, nca, cppn)
}

# Which network each technique loads from the ModelStore (None: it needs no pretrained weights).
NEEDS_WEIGHTS: dict[str, str | None] = {
    "imagine": "clip", "compare": "clip", "style": "vgg", "dream": "vgg", "nca": None, "cppn": None,
}


def get_technique(name: str) -> Technique:
    """The technique called `name`; KeyError listing the known ones otherwise."""
    try:
        return TECHNIQUES[name]
    except KeyError:
        raise KeyError(f"unknown technique {name!r}; known: {', '.join(TECHNIQUES)}") from None
