"""A job's full description: technique, config and seed. Enough to reproduce the image exactly."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import PureWindowsPath
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

    def used_values(self) -> dict[str, Any]:
        """The config's values as the job uses them, by field name, for its descriptions. A config may say
        so itself with `used_values(seed)`: a /compare writes out the values it tries and leaves out the
        base value of the setting it compares."""
        if hasattr(self.config, "used_values"):
            return self.config.used_values(self.seed)
        return {field.name: getattr(self.config, field.name) for field in dataclasses.fields(self.config)}

    def describe(self) -> str:
        """Short human text: the technique, the seed, the steps and size and every non-default parameter."""
        parts = [self.technique, f"seed {self.seed}"]
        used = self.used_values()
        for field in dataclasses.fields(self.config):
            value = used.get(field.name)
            always = field.metadata.get("limit") is not None  # steps and size are always worth showing
            if value is None or (value == field.default and not always):
                continue
            if field.metadata.get("image"):
                value = file_name(value)  # an input image: its name, not where the server keeps it
            if isinstance(value, str):
                value = repr(value if len(value) <= 80 else value[:77] + "...")
            parts.append(f"{(field.metadata.get('flag') or field.name).replace('_', '-')}={value}")
        return " · ".join(parts)

    def parameters_text(self, *, device: str | None = None, image_size: tuple[int, int] | None = None) -> str:
        """The job in the AUTOMATIC1111 "parameters" convention that other image tools read:

            a lighthouse in a storm | fog:0.5
            Negative prompt: blurry, text
            Steps: 200, Seed: 7, Size: 256x256, Technique: imagine, Param: pixels, Cutn: 32, ...

        The prompt lines only when the technique has a prompt, the negative line only when there is
        one; then every other parameter and the seed, input images by file name only. A value with a
        comma, colon or quote is written as a JSON string, as that convention does.
        """
        values = self.used_values()
        lines = []
        if values.get("prompt"):
            lines.append(str(values.pop("prompt")))
        values.pop("prompt", None)
        negative = values.pop("negative", None)
        if negative:
            lines.append(f"Negative prompt: {negative}")
        pairs = []
        if "steps" in values:
            pairs.append(("Steps", values.pop("steps")))
        pairs.append(("Seed", self.seed))
        if "size" in values:
            size = values.pop("size")
            square = image_size is not None and max(image_size) == size
            pairs.append(("Size", f"{image_size[0]}x{image_size[1]}" if square else size))
        pairs.append(("Technique", self.technique))
        images = self.image_paths()
        for name, value in values.items():
            if value is not None:
                pairs.append((name.replace("_", " ").capitalize(), file_name(value) if name in images else value))
        if device:
            pairs.append(("Device", device))
        lines.append(", ".join(f"{key}: {_parameter_value(value)}" for key, value in pairs))
        return "\n".join(lines)

    def png_metadata(
        self, device: str | None = None, *, job_id: int | None = None, image_size: tuple[int, int] | None = None
    ) -> dict[str, str]:
        """Text chunks for the PNG: the whole job as JSON under `easel`, `parameters` for other tools,
        plus readable keys.

        `device` (e.g. "cuda", "cpu") is recorded because a seed reproduces the same image only on
        the same kind of device; `job_id` is the job's number in the bot; `image_size` is the
        result's (width, height). `from_dict` reads the JSON back and ignores `device` and `job`.
        """
        job = self.to_dict() | ({"device": device} if device else {})
        if job_id is not None:
            # A bot job's input images by name only: where the server keeps files is nobody's business, and
            # running the recipe again takes the images from the job itself.
            job["job"] = job_id
            job["config"] = job["config"] | {name: file_name(path) for name, path in self.image_paths().items()}
        metadata = {
            "easel": json.dumps(job, ensure_ascii=False, sort_keys=True),
            "parameters": self.parameters_text(device=device, image_size=image_size),
            "Description": self.describe(),
            "Technique": self.technique,
            "Seed": str(self.seed),
            "Software": "Easel",
        }
        if device:
            metadata["Device"] = device
        return metadata


def file_name(path: str) -> str:
    """The file name of an input image's recorded path (a `/` or `\\` path), never where it was kept."""
    return PureWindowsPath(path).name or path


def _parameter_value(value: object) -> str:
    """One value of the `parameters` line: numbers exact but short, text quoted when it needs to be."""
    if isinstance(value, float):
        text = f"{value:g}"
        return text if float(text) == value else repr(value)
    text = str(value)
    if any(mark in text for mark in ',:"\n'):
        return json.dumps(text, ensure_ascii=False)
    return text


def _prompt_part_text(part: str) -> str:
    """The text of one `text[:weight]` part of a prompt, without its weight."""
    from bot.art.prompts import parse_weighted_prompt

    try:
        return parse_weighted_prompt(part).text
    except ValueError:  # a bad weight: the job will be refused anyway, check the text as written
        return part.strip()
