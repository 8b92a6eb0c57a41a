import dataclasses

import pytest

from bot.art.techniques import TECHNIQUES
from bot.jobs.spec import JobSpec

REQUIRED = {  # the fields each config needs; file paths are not opened when a config is built
    "imagine": {"prompt": "a cat"},
    "cppn": {},
    "nca": {"target": "emoji.png"},
    "style": {"content": "a.png", "style": "b.png"},
    "dream": {"image": "a.png"},
}

BAD_VALUES = [
    ("imagine", {"steps": 9000}, r"steps must be between 1 and 5000 \(you gave 9000\)"),
    ("imagine", {"negative": "x", "cutn": 0}, r"cutn must be between 1 and 128 \(you gave 0\)"),
    ("cppn", {"colour": "purple"}, r"colour must be one of rgb, hsv, grey \(you gave 'purple'\)"),
    ("cppn", {"zoom": float("nan")}, r"zoom must be between 0.05 and 50 \(you gave nan\)"),
    ("nca", {"fire_rate": 0.0}, r"fire-rate must be between 0.05 and 1 \(you gave 0\)"),
    ("style", {"size": 8}, r"size must be between 32 and 4096 \(you gave 8\)"),
    ("dream", {"layer": "relu9_9"}, r"layer must be one of relu1_1, .* \(you gave 'relu9_9'\)"),
]


@pytest.mark.parametrize(("technique", "changes", "message"), BAD_VALUES)
def test_every_config_checks_its_ranges_when_built_directly(technique, changes, message):
    config_type = TECHNIQUES[technique].config_type
    with pytest.raises(ValueError, match=message):
        config_type(**REQUIRED[technique], **changes)


@pytest.mark.parametrize(("technique", "changes", "message"), BAD_VALUES)
def test_stored_jobs_with_out_of_range_values_are_refused(technique, changes, message):
    config = TECHNIQUES[technique].config_type(**REQUIRED[technique])
    stored = {"technique": technique, "seed": 1, "config": dataclasses.asdict(config) | changes}
    with pytest.raises(ValueError, match=message):
        JobSpec.from_dict(stored)


def test_defaults_and_unset_optional_fields_pass():
    for technique, required in REQUIRED.items():
        config = TECHNIQUES[technique].config_type(**required)
        assert all(getattr(config, name) == value for name, value in required.items())
