"""Weighted text prompts: `a lighthouse | stormy sea:0.5 | text:-1`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WeightedPrompt:
    text: str
    weight: float  # > 0 pulls the image towards the text, < 0 pushes it away


def parse_weighted_prompt(part: str) -> WeightedPrompt:
    """One `text[:weight]` part; the trailing `:x` is a weight only when x parses as a number."""
    text, colon, maybe_weight = part.rpartition(":")
    if colon:
        try:
            return WeightedPrompt(text.strip(), float(maybe_weight))
        except ValueError:
            pass  # "a sign that says: hello" keeps its colon
    return WeightedPrompt(part.strip(), 1.0)


def parse_weighted_prompts(text: str) -> list[WeightedPrompt]:
    """Prompts separated by `|`, each with an optional `:weight` (default 1); empty parts are dropped."""
    prompts = [parse_weighted_prompt(part) for part in text.split("|") if part.strip()]
    prompts = [prompt for prompt in prompts if prompt.text]
    if not any(prompt.weight > 0 for prompt in prompts):
        raise ValueError("the prompt needs at least one text with a positive weight, e.g. `a lighthouse`")
    if sum(prompt.weight for prompt in prompts) == 0:
        raise ValueError("the prompt weights add up to 0; give the main text a larger weight")
    return prompts
