"""The registry of techniques, by the name people type (`/imagine`, `render cppn`)."""

from __future__ import annotations

from bot.art.technique import Technique
from bot.art.techniques import compare, cppn, dream, generator, imagine, nca, style

TECHNIQUES: dict[str, Technique] = {
    module.TECHNIQUE.name: module.TECHNIQUE for module in (imagine, compare, style, dream, nca, cppn)
}

# Jobs on a guild's trained generator. Only /train, /sample and /walk start them, after checking that the
# model is the guild's: they are kept out of TECHNIQUES, which the parser and recipes accept by name.
GENERATOR_TECHNIQUES: dict[str, Technique] = {job.name: job for job in (generator.TRAIN, generator.SAMPLE,
                                                                         generator.WALK)}
# Techniques whose jobs read or keep a model in the worker's workspace, on the bot's own disk.
WORKSPACE_TECHNIQUES = frozenset({"train", "sample", "walk"})

# Which network each technique loads from the ModelStore (None: it needs no pretrained weights).
NEEDS_WEIGHTS: dict[str, str | None] = {
    "imagine": "clip", "compare": "clip", "style": "vgg", "dream": "vgg", "nca": None, "cppn": None,
}


def get_technique(name: str) -> Technique:
    """The technique called `name`; KeyError listing the known ones otherwise."""
    technique = TECHNIQUES.get(name) or GENERATOR_TECHNIQUES.get(name)
    if technique is None:
        raise KeyError(f"unknown technique {name!r}; known: {', '.join(TECHNIQUES | GENERATOR_TECHNIQUES)}")
    return technique
