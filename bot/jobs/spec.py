"""A job's full description: technique, config and seed. Enough to reproduce the image exactly."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class JobSpec:
    technique: str
    config: Any  # the technique's frozen config dataclass
    seed: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (config fields are str, int, float, bool or None)."""
        return {"technique": self.technique, "seed": self.seed, "config": dataclasses.asdict(self.config)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSpec:
        """The inverse of `to_dict`; unknown config keys (from an older version) are an error."""
        from bot.art.techniques import get_technique  # the registry imports every technique: load it lazily

        config_type = get_technique(data["technique"]).config_type
        return cls(technique=data["technique"], config=config_type(**data["config"]), seed=int(data["seed"]))

    def image_paths(self) -> dict[str, str]:
        """The input images this job reads, by field name (fields declared with `param(image=True)`)."""
        return {
            field.name: getattr(self.config, field.name)
            for field in dataclasses.fields(self.config)
            if field.metadata.get("image") and getattr(self.config, field.name) is not None
        }

    def texts(self) -> list[str]:
        """Every text this job gives its models, as it will use them: each text field whole, and each
        weighted part of a prompt (`a | b:0.5`) on its own. Moderation checks these."""
        texts = []
        for field in dataclasses.fields(self.config):
            value = getattr(self.config, field.name)
            if isinstance(value, str) and not field.metadata.get("image") and not field.metadata.get("choices"):
                texts.append(value)
                if "|" in value:
                    texts.extend(_prompt_part_text(part) for part in value.split("|"))
        return [text for text in texts if text.strip()]

    def describe(self) -> str:
        """Short human text: the technique, the seed, the steps and size and every non-default parameter."""
        parts = [self.technique, f"seed {self.seed}"]
        for field in dataclasses.fields(self.config):
            value = getattr(self.config, field.name)
            always = field.metadata.get("limit") is not None  # steps and size are always worth showing
            if value is None or (value == field.default and not always):
                continue
            if field.metadata.get("image"):
                value = Path(value).name  # an input image: its name, not where the server keeps it
            if isinstance(value, str):
                value = repr(value if len(value) <= 80 else value[:77] + "...")
            parts.append(f"{(field.metadata.get('flag') or field.name).replace('_', '-')}={value}")
        return " · ".join(parts)

    def png_metadata(self, device: str | None = None) -> dict[str, str]:
        """Text chunks for the PNG: the whole job as JSON under `easel`, plus readable keys.

        `device` (e.g. "cuda", "cpu") is recorded because a seed reproduces the same image only on
        the same kind of device; `from_dict` reads the JSON back and ignores it.
        """
        job = self.to_dict() | ({"device": device} if device else {})
        metadata = {
            "easel": json.dumps(job, ensure_ascii=False, sort_keys=True),
            "Description": self.describe(),
            "Technique": self.technique,
            "Seed": str(self.seed),
            "Software": "Easel",
        }
        if device:
            metadata["Device"] = device
        return metadata


def _prompt_part_text(part: str) -> str:
    """The text of one `text[:weight]` part of a prompt, without its weight."""
    from bot.art.prompts import parse_weighted_prompt

    try:
        return parse_weighted_prompt(part).text
    except ValueError:  # a bad weight: the job will be refused anyway, check the text as written
        return part.strip()
