"""`python -m bot weights list|download|import`: see, fetch or bring in the model weights techniques need.

torch and open_clip are imported inside the commands: the rest of the CLI should not wait for them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from bot.settings import Settings

NO_WEIGHTS_TECHNIQUES = ("cppn", "nca")
SETTING_FOR_KIND = {"clip": "CLIP_PRETRAINED", "vgg": "VGG_WEIGHTS"}


def add_weights_command(subparsers) -> None:
    weights = subparsers.add_parser(
        "weights", help="list, download or import model weights",
        description="The weights each technique needs: imagine needs CLIP, style and dream need VGG16, "
                    "cppn and nca need none. Files live in DATA_DIR/weights.",
    )
    actions = weights.add_subparsers(dest="weights_action", required=True, metavar="ACTION")

    actions.add_parser(
        "list", help="show each technique's weights: present or missing, with sizes",
        description="Show which weights each technique needs and whether they are on this machine.",
    ).set_defaults(func=command_list)

    actions.add_parser(
        "download", help="download the configured CLIP and VGG16 weights into DATA_DIR/weights",
        description="Download CLIP_PRETRAINED (an open_clip tag) through open_clip and Hugging Face, and "
                    "torchvision's VGG16 weights when VGG_WEIGHTS=torchvision. "
                    "Refuses when HF_HUB_OFFLINE is set.",
    ).set_defaults(func=command_download)

    import_parser = actions.add_parser(
        "import", help="copy a local weights file into DATA_DIR/weights",
        description="Copy a .safetensors/.pt/.pth/.bin file into DATA_DIR/weights "
                    "and print the setting to use.",
    )
    import_parser.add_argument("path", type=Path, help="the weights file")
    import_parser.add_argument("--kind", choices=tuple(SETTING_FOR_KIND),
                               help="clip or vgg (guessed from the file's keys when left out)")
    import_parser.add_argument("--force", action="store_true",
                               help="replace a different file of the same name")
    import_parser.set_defaults(func=command_import)


def format_size(size_bytes: int) -> str:
    return f"{size_bytes / 1e6:.1f} MB" if size_bytes >= 1e5 else f"{size_bytes / 1e3:.1f} kB"


def print_status(settings: Settings) -> bool:
    """One line per technique group; True when every technique can run."""
    from bot.art.models import ModelChoice, weights_status

    all_present = True
    for status in weights_status(ModelChoice.from_settings(settings)):
        techniques = ", ".join(status.techniques)
        setting = f"{status.setting}={status.value}"
        if status.random_weights:
            state = "random weights (fine for trying things out; images will not look like the prompt)"
        elif status.present:
            state = f"present  {format_size(status.size_bytes)}  {status.path}"
        else:
            all_present = False
            state = "MISSING  (run `python -m bot weights download` or `python -m bot weights import PATH`)"
        print(f"{techniques:<14} {setting:<40} {state}")
    print(f"{', '.join(NO_WEIGHTS_TECHNIQUES):<14} {'(no weights needed)':<40} ready")
    return all_present


def command_list(args: argparse.Namespace) -> int:
    print_status(Settings())
    return 0


def hub_downloads_disabled() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def command_download(args: argparse.Namespace) -> int:
    if hub_downloads_disabled():
        print("Downloading is off: HF_HUB_OFFLINE is set. Unset it to download, or bring files in with "
              "`python -m bot weights import PATH --kind clip|vgg`.", file=sys.stderr)
        return 1
    import open_clip
    import torch

    from bot.art.models import ModelChoice, clip_config_name, find_cached_clip_weights, is_weights_file

    settings = Settings()
    choice = ModelChoice.from_settings(settings)
    tag = choice.clip_pretrained
    if tag.lower() == "none" or is_weights_file(tag):
        print(f"CLIP_PRETRAINED={tag}: nothing to download")
    else:
        model_name = clip_config_name(choice.clip_model)
        pretrained_cfg = open_clip.get_pretrained_cfg(model_name, tag)
        if not pretrained_cfg:
            known = ", ".join(open_clip.list_pretrained_tags_by_model(model_name)) or "none"
            print(f"CLIP_PRETRAINED={tag} is not an open_clip tag for {choice.clip_model}; known: {known}",
                  file=sys.stderr)
            return 2
        if find_cached_clip_weights(model_name, tag, choice.clip_cache_dir) is None:
            print(f"downloading CLIP {choice.clip_model} ({tag}) into {choice.clip_cache_dir} ...")
            open_clip.download_pretrained(pretrained_cfg, cache_dir=str(choice.clip_cache_dir))

    if choice.vgg_weights.lower() == "torchvision":
        if not choice.vgg_cache_file.is_file():
            from torchvision.models import VGG16_Weights

            print(f"downloading VGG16 (torchvision IMAGENET1K_V1) into {choice.vgg_cache_file} ...")
            choice.vgg_cache_file.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(VGG16_Weights.IMAGENET1K_V1.url, str(choice.vgg_cache_file))
    else:
        print(f"VGG_WEIGHTS={choice.vgg_weights}: nothing to download")
    return 0 if print_status(settings) else 1


def guess_kind(path: Path) -> str | None:
    """"clip" or "vgg" from the state dict's keys; None when they look like neither."""
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as weights_file:
            keys = list(weights_file.keys())
    else:
        import torch

        state_dict = torch.load(path, map_location="cpu", weights_only=True)
        keys = list(state_dict.get("state_dict", state_dict))
    keys = [key.removeprefix("module.") for key in keys]
    if any(key.startswith(("visual.", "text_projection", "token_embedding")) for key in keys):
        return "clip"
    if any(key.startswith("features.") or key.split(".")[0].isdigit() for key in keys):
        return "vgg"
    return None


def command_import(args: argparse.Namespace) -> int:
    source: Path = args.path
    if not source.is_file():
        print(f"{source}: no such file", file=sys.stderr)
        return 2
    if source.suffix not in (".safetensors", ".pt", ".pth", ".bin"):
        print(f"{source}: expected a .safetensors, .pt, .pth or .bin file", file=sys.stderr)
        return 2
    kind = args.kind or guess_kind(source)
    if kind is None:
        print(f"cannot tell whether {source} holds CLIP or VGG weights; say --kind clip or --kind vgg",
              file=sys.stderr)
        return 2
    weights_dir = Settings().data_dir / "weights"
    target = weights_dir / source.name
    already_there = target.exists() and target.samefile(source)
    if target.exists() and not already_there and not args.force:
        print(f"{target} already exists; rename the file or pass --force to replace it", file=sys.stderr)
        return 1
    if not already_there:
        weights_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    print(f"copied to {target}; use this setting (in .env or the environment):")
    print(f"{SETTING_FOR_KIND[kind]}={target}")
    return 0
