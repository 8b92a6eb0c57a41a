"""Which device the worker will run on, described for people."""

from __future__ import annotations


def describe_device(setting: str) -> str:
    import torch  # imported here: the bot's start-up should not wait for torch

    if setting == "auto":
        setting = "cuda" if torch.cuda.is_available() else "cpu"
    if setting.startswith("cuda"):
        if not torch.cuda.is_available():
            return f"{setting} (not available on this machine)"
        index = int(setting.partition(":")[2] or 0)
        return f"{setting} ({torch.cuda.get_device_name(index)})"
    return setting
