"""Weighted text prompts: `a lighthouse | stormy sea:0.5 | text:-1`."""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_WEIGHT = 10.0  # |weight| above this swamps every other prompt; nan and inf would poison the loss


@dataclass(frozen=True)
class WeightedPrompt:
    text: str
    weight: float  # > 0 pulls the image towards the text, < 0 pushes it away


def parse_weighted_prompt(part: str) -> WeightedPrompt:
    """One `text[:weight]` part.

    The trailing `:x` is a weight only when x parses as a number and the character before the colon
    is not a digit: "a sign that says: hello" and "a widescreen poster 16:9" keep their colons.
    """
    text, colon, maybe_weight = part.rpartition(":")
    if not colon or text[-1:].isdigit():
        return WeightedPrompt(part.strip(), 1.0)
    try:
        weight = float(maybe_weight)
    except ValueError:
        return WeightedPrompt(part.strip(), 1.0)
    if not (math.isfinite(weight) and abs(weight) <= MAX_WEIGHT):
        limits = f"between {-MAX_WEIGHT:g} and {MAX_WEIGHT:g}"
        raise ValueError(f"prompt weights must be numbers {limits} (you gave {maybe_weight.strip()})")
    return WeightedPrompt(text.strip(), weight)


def parse_weighted_prompts(text: str) -> list[WeightedPrompt]:
    """Prompts separated by `|`, each with an optional `:weight` (default 1); empty parts are dropped."""
    prompts = [parse_weighted_prompt(part) for part in text.split("|") if part.strip()]
    prompts = [prompt for prompt in prompts if prompt.text]
    if not any(prompt.weight > 0 for prompt in prompts):
        raise ValueError("the prompt needs at least one text with a positive weight, e.g. `a lighthouse`")
    if sum(prompt.weight for prompt in prompts) == 0:
        raise ValueError("the prompt weights add up to 0; give the main text a larger weight")
    return prompts
