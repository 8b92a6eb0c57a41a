"""`python -m bot render TECHNIQUE [TEXT] [--options...] --out DIR`: run one job locally, no Discord.

The options go through the same parser as slash commands and inline flags, so anything that works
here works in Discord (where the server's limits may be smaller). `--from FILE.png` runs the recipe
an Easel PNG carries again (same seed, same image on the same kind of device); options after it
override the recipe's, and input images it used must be given again unless their recorded path
exists here. Exit codes: 0 done, 1 the technique's weights are missing, 2 a bad option, input
image or recipe.

    python -m bot render imagine "a lighthouse in a storm | fog:0.5 --steps 150 --seed 3" --out out/
    python -m bot render cppn --seed 7 --size 512
    python -m bot render nca --target emoji.png --steps 800
    python -m bot render style --content a.png --style b.png
    python -m bot render dream --image a.png --layer relu5_1
    python -m bot render --from easel-42.png --steps 400
    python -m bot render --from easel-43.png --content a.png --style b.png
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
from pathlib import Path

from PIL import Image
from pydantic import ValidationError
from tqdm import tqdm

from bot.art.imagefiles import LOCAL_MAX_BYTES, ImageRejected, safe_filename, save_animation, save_png
from bot.jobs.parser import Limits, ParsedJob, SpecError, parse_job
from bot.jobs.recipes import Recipe, RecipeError, read_recipe, recipe_options
from bot.settings import Settings

LOCAL_LIMITS = Limits(max_steps=100_000, max_size=4096, clamp=False)  # your machine: only the fields' ranges


TECHNIQUE_NAMES = ("imagine", "compare", "style", "dream", "nca", "cppn")


def add_render_command(subparsers) -> None:
    """Add `render` to an argparse subparsers object; its `func(namespace)` returns the exit code."""
    parser = subparsers.add_parser(
        "render",
        help="run one technique locally and save the image and its animation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("out"), help="folder for the results (default out/)")
    parser.add_argument(
        "--from", dest="recipe", nargs=argparse.REMAINDER, metavar="FILE.png [options]",
        help="run the recipe in an Easel PNG again, instead of a technique; options after it override it",
    )
    # The names are written out so that `--help` loads no model code (parse_job refuses any other name).
    parser.add_argument("technique", nargs="?", metavar="TECHNIQUE",
                        help=f"which technique to run: {', '.join(TECHNIQUE_NAMES)}")
    parser.add_argument(
        "options", nargs=argparse.REMAINDER,
        help="prompt text and technique options, e.g. --steps 150 --seed 3 --size 512 (--out may go here)",
    )
    parser.set_defaults(func=run_render)


def split_out_option(tokens: list[str], default: Path) -> tuple[list[str], Path]:
    """Take `--out DIR` or `--out=DIR` out of the technique options (argparse leaves it there)."""
    rest, out = [], default
    tokens = iter(tokens)
    for token in tokens:
        if token == "--out":
            out = Path(next(tokens, str(default)))
        elif token.startswith("--out="):
            out = Path(token.removeprefix("--out="))
        else:
            rest.append(token)
    return rest, out


def options_text(tokens: list[str]) -> str | None:
    """Shell words back into one inline-flag text: leading words are the prompt, the rest re-quoted."""
    first_flag = next((i for i, token in enumerate(tokens) if token.startswith("--")), len(tokens))
    words = tokens[:first_flag] + [shlex.quote(token) for token in tokens[first_flag:]]
    return " ".join(words) or None


class ProgressBar:
    """A technique's progress reports as a tqdm bar on stderr: steps done of the total, and the loss."""

    def __init__(self) -> None:
        # Made before the run so that its clock counts from the start; shown from the first report on.
        self.bar = tqdm(unit="step", file=sys.stderr, dynamic_ncols=True, delay=1e-9)

    def __call__(self, step: int, total: int, preview: Image.Image, metrics: dict[str, float]) -> None:
        self.bar.total = total
        if "loss" in metrics:
            self.bar.set_postfix(loss=f"{metrics['loss']:.4g}", refresh=False)
        self.bar.update(step - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def run_render(args: argparse.Namespace) -> int:
    if args.recipe is not None:
        return _run_recipe(args)
    if args.technique is None:
        print("error: name a technique to run, or give --from FILE.png", file=sys.stderr)
        return 2
    tokens, out_dir = split_out_option(args.options, args.out)
    if "--from" in tokens:
        print("error: --from FILE.png replaces the technique: `render --from FILE.png [options]`", file=sys.stderr)
        return 2
    try:
        job = parse_job(args.technique, {}, limits=LOCAL_LIMITS, text=options_text(tokens))
    except SpecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return _render(job, out_dir)


def _run_recipe(args: argparse.Namespace) -> int:
    """`render --from FILE.png [options]`: the recipe's options, then the given ones over them."""
    if args.technique is not None or args.options:
        print("error: --from FILE.png replaces the technique: `render --from FILE.png [options]`", file=sys.stderr)
        return 2
    if not args.recipe:
        print("error: --from needs the PNG file to read the recipe from", file=sys.stderr)
        return 2
    tokens, out_dir = split_out_option(args.recipe[1:], args.out)
    try:
        recipe = load_recipe(Path(args.recipe[0]))
        job = recipe_job(recipe, tokens)
    except (RecipeError, SpecError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    made = f" (job #{recipe.job_id})" if recipe.job_id is not None else ""
    print(f"recipe from {args.recipe[0]}{made}", file=sys.stderr)
    return _render(job, out_dir, recorded_device=recipe.device)


def load_recipe(path: Path) -> Recipe:
    """The recipe in a PNG file; RecipeError for a missing, oversized or recipe-less file."""
    try:
        if path.stat().st_size > LOCAL_MAX_BYTES:
            raise RecipeError(f"{path} is larger than {LOCAL_MAX_BYTES // (1024 * 1024)} MB: not an Easel result.")
        data = path.read_bytes()
    except OSError as error:
        raise RecipeError(f"Could not read {str(path)!r}: {error.strerror or error}.") from None
    return read_recipe(data, max_bytes=LOCAL_MAX_BYTES)


def recipe_job(recipe: Recipe, tokens: list[str]) -> ParsedJob:
    """The recipe as a job, `tokens` (prompt words and --options) overriding it through the same parser.

    An input image the recipe used is kept when its recorded path exists on this machine; otherwise
    it must be given again (`--content a.png`), or this raises a RecipeError naming it.
    """
    options, images = recipe_options(recipe)
    recorded = recipe.spec.image_paths()
    job = parse_job(recipe.spec.technique, options | recorded, limits=LOCAL_LIMITS, text=options_text(tokens))
    missing = [
        name for name, path in recorded.items()
        if job.spec.image_paths().get(name) == path and not Path(path).is_file()
    ]
    if missing:
        wanted = "; ".join(f"--{name.replace('_', '-')} FILE (it used {images[name]!r})" for name in missing)
        raise RecipeError(f"This recipe needs input images that are not on this machine. Give them again: {wanted}.")
    return job


def _render(job: ParsedJob, out_dir: Path, recorded_device: str | None = None) -> int:
    """Runs a parsed job and saves its image and animation in `out_dir`, printing where."""
    from bot.art.models import ModelChoice, ModelStore, choose_device, make_deterministic  # torch, open_clip
    from bot.art.technique import MissingWeightsError, RunContext
    from bot.art.techniques import TECHNIQUES

    try:
        settings = Settings()
        device = choose_device(settings.device)
    except (ValidationError, ValueError) as error:
        print(f"Invalid settings: {error}", file=sys.stderr)
        return 2

    spec = job.spec
    print(f"{spec.describe()} on {device}", file=sys.stderr)
    if recorded_device and recorded_device.split(":")[0] != device.type:
        print(f"note: the recipe was made on {recorded_device}; on {device.type} the same seed may give "
              "a different image", file=sys.stderr)
    make_deterministic(device)
    progress = ProgressBar()
    ctx = RunContext(
        device=device,
        models=ModelStore(ModelChoice.from_settings(settings), device),
        on_progress=progress,
        progress_every=settings.progress_every,
    )
    try:
        with contextlib.closing(progress):  # the bar ends its line before anything else is printed
            result = TECHNIQUES[spec.technique].run(spec.config, spec.seed, ctx)
    except MissingWeightsError as error:
        print(error, file=sys.stderr)
        return 1
    except ImageRejected as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    out_dir.mkdir(parents=True, exist_ok=True)
    stem = safe_filename(f"{spec.technique}-{spec.seed}")
    image_path = out_dir / f"{stem}.png"
    save_png(result.image, image_path, spec.png_metadata(device=str(device), image_size=result.image.size))
    print(f"image: {image_path}")
    if result.frames:
        animation_path = out_dir / f"{stem}.gif"
        save_animation(result.frames, animation_path)
        print(f"animation: {animation_path}")
    for note in job.notes + result.notes:
        print(f"note: {note}")
    print(f"{result.steps_done} steps in {result.seconds:.1f}s")
    return 0
