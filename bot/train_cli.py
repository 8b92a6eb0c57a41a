"""`python -m bot train --images DIR`: train a small GAN on a folder of images, no Discord.

The same DCGAN and trainer as /train (bot/art/gan.py). It saves a checkpoint every `--save-every`
steps into the output folder and goes on from it when run again, so Ctrl-C loses little; a grid of
samples from the same fixed latents is saved at each checkpoint, so you can watch it learn. At the
end: `samples.png`, `losses.png` (both networks) and `walk.gif` (a loop through latent space).

    python -m bot train --images paintings/ --size 64 --steps 5000 --out out/marine-gan
Exit codes: 0 done, 1 stopped with Ctrl-C (the checkpoint is kept), 2 bad images or options.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from bot.art.imagefiles import ACCEPTED_FORMATS, ImageRejected

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif"}
WALK_FRAMES = 48


def add_train_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a small GAN on a folder of images and save samples, losses and a latent walk",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--images", type=Path, required=True,
                        help=f"a folder of images ({', '.join(ACCEPTED_FORMATS)}), searched recursively")
    parser.add_argument("--out", type=Path, default=Path("out/gan"), help="folder for checkpoints and results")
    parser.add_argument("--size", type=int, default=64, choices=(32, 64, 128), help="training image side")
    parser.add_argument("--steps", type=int, default=2000, help="training steps in all (default 2000)")
    parser.add_argument("--no-mirror", dest="mirror", action="store_false", help="no left-right flips")
    parser.add_argument("--width", type=int, default=64, help="channels of the networks' widest block")
    parser.add_argument("--batch", type=int, default=64, help="images per step")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save-every", type=int, default=200, help="steps between checkpoints and grids")
    parser.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    import torch  # the heavy imports only when training

    from bot.art.gan import GanConfig, GanTrainer, latent_walk, load_dataset, loss_chart, sample_grid
    from bot.art.imagefiles import save_animation
    from bot.art.models import choose_device
    from bot.settings import Settings

    paths = sorted(path for path in args.images.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        print(f"No images in {args.images} (looked for {', '.join(sorted(IMAGE_SUFFIXES))}).", file=sys.stderr)
        return 2
    try:
        config = GanConfig(image_size=args.size, mirror=args.mirror, generator_width=args.width,
                           discriminator_width=args.width, batch_size=args.batch)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    device = choose_device(Settings().device)
    try:
        images = load_dataset(paths, args.size, device)  # [N, 3, S, S] in -1..1
    except ImageRejected as error:
        print(f"An image could not be used: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    checkpoint = args.out / "checkpoint.pt"
    if checkpoint.exists():
        trainer = GanTrainer.load(checkpoint, device)
        if trainer.config != config:
            print(f"{checkpoint} was trained with other options; use another --out or the same options.",
                  file=sys.stderr)
            return 2
    else:
        trainer = GanTrainer(config, args.seed, device)
    print(f"{len(images)} images at {args.size} px on {device}; from step {trainer.step} to {args.steps}.")

    def save() -> None:
        """The checkpoint (written atomically) and the grid of this step."""
        trainer.save(checkpoint)
        sample_grid(trainer).save(args.out / f"grid-{trainer.step:07d}.png")

    bar = tqdm(total=args.steps, initial=trainer.step, unit="step", file=sys.stderr, dynamic_ncols=True)
    try:
        while trainer.step < args.steps:
            losses = trainer.train_steps(min(args.save_every, args.steps - trainer.step), images)
            bar.update(len(losses.generator))
            bar.set_postfix(d=f"{losses.discriminator[-1]:.3f}", g=f"{losses.generator[-1]:.3f}")
            save()
    except KeyboardInterrupt:
        bar.close()
        save()
        print(f"Stopped at step {trainer.step}; run the same command again to go on.", file=sys.stderr)
        return 1
    bar.close()
    sample_grid(trainer).save(args.out / "samples.png")
    loss_chart(trainer).save(args.out / "losses.png")
    with torch.no_grad():
        save_animation(latent_walk(trainer.generator, args.seed, WALK_FRAMES), args.out / "walk.gif", hold_last=False)
    print(f"Done: {args.out / 'samples.png'}, {args.out / 'losses.png'}, {args.out / 'walk.gif'}")
    return 0
