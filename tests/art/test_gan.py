import math
import pickle

import numpy as np
import pytest
import torch
from PIL import Image, ImageChops, ImageDraw

from bot.art import gan
from bot.art.gan import (
    Discriminator,
    GanConfig,
    GanTrainer,
    Generator,
    latent_walk,
    load_dataset,
    random_latents,
    render,
    sample,
    sample_grid,
    slerp,
    walk_latents,
)

CPU = torch.device("cpu")
TINY = GanConfig(image_size=32, latent_dim=16, generator_width=8, discriminator_width=8, batch_size=8)
COLOURS = [(230, 60, 40), (40, 160, 90), (50, 80, 220), (240, 200, 40)]


def squares(count: int = 16, side: int = 32) -> list[Image.Image]:
    """Coloured squares on coloured grounds, in different places: a tiny set a GAN can start on."""
    images = []
    for index in range(count):
        image = Image.new("RGB", (side, side), COLOURS[index % 4])
        corner = 2 + (index * 5) % (side // 2)
        ImageDraw.Draw(image).rectangle((corner, corner, corner + side // 3, corner + side // 3),
                                        fill=COLOURS[(index // 4 + 1) % 4])
        images.append(image)
    return images


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny convolutions: on a shared 2-core machine, two threads wait on each other (10x slower here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return load_dataset(squares(), TINY.image_size, CPU)  # [16, 3, 32, 32]


def same_image(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and ImageChops.difference(a, b).getbbox() is None


def networks_state(trainer: GanTrainer) -> list[torch.Tensor]:
    return [*trainer.generator.state_dict().values(), *trainer.discriminator.state_dict().values()]


@pytest.mark.parametrize("size", [32, 64, 128])
def test_shapes_follow_the_image_size(size):
    config = GanConfig(image_size=size, latent_dim=16, generator_width=4, discriminator_width=4)
    generator, discriminator = Generator(config), Discriminator(config)
    made = generator(torch.randn(2, 16, 1, 1))
    assert made.shape == (2, 3, size, size) and made.abs().max() <= 1
    assert discriminator(made).shape == (2,)
    blocks = int(math.log2(size // 4))  # 3, 4, 5: a transposed conv per block, and the 4x4 one before them
    assert sum(isinstance(layer, torch.nn.ConvTranspose2d) for layer in generator.modules()) == blocks + 1
    assert generator(torch.randn(1, 16, 2, 2)).shape == (1, 3, size * 5 // 4, size * 5 // 4)  # fully convolutional


def test_config_refuses_sizes_the_architecture_lacks():
    with pytest.raises(ValueError, match="image-size must be one of 32, 64, 128"):
        GanConfig(image_size=48)
    with pytest.raises(ValueError, match="batch-size"):
        GanConfig(batch_size=1)


def test_training_moves_every_weight_with_finite_losses_and_no_global_rng(images):
    global_state = torch.get_rng_state()
    trainer = GanTrainer(TINY, seed=0, device=CPU)
    before = [p.detach().clone() for p in [*trainer.generator.parameters(), *trainer.discriminator.parameters()]]
    losses = trainer.train_steps(3, images)
    after = [*trainer.generator.parameters(), *trainer.discriminator.parameters()]
    assert all(not torch.equal(old, new) for old, new in zip(before, after, strict=True))
    assert len(losses.discriminator) == len(losses.generator) == 3 and trainer.step == 3
    assert all(math.isfinite(value) for value in losses.discriminator + losses.generator)
    assert trainer.history == losses
    assert torch.equal(torch.get_rng_state(), global_state)  # its own stream only


def test_cancel_stops_between_steps(images):
    trainer = GanTrainer(TINY, seed=0, device=CPU)
    checks = []
    losses = trainer.train_steps(5, images, should_cancel=lambda: checks.append(1) or len(checks) > 2)
    assert len(losses.generator) == 2 and trainer.step == 2


def test_resumed_run_matches_an_uninterrupted_one(images, tmp_path):
    straight = GanTrainer(TINY, seed=3, device=CPU)
    straight.train_steps(3, images)
    expected = straight.train_steps(3, images)

    first = GanTrainer(TINY, seed=3, device=CPU)
    first.train_steps(3, images)
    sample_grid(first)  # the worker posts the grid between chunks: it must not disturb the run
    first.sample_latents = chosen = random_latents(4, 16, seed=99)  # a grid chosen otherwise is kept too
    first.save(tmp_path / "run.pt")
    del first
    resumed = GanTrainer.load(tmp_path / "run.pt", CPU)
    got = resumed.train_steps(3, images)

    assert torch.equal(torch.tensor(got), torch.tensor(expected))
    assert all(torch.equal(a, b) for a, b in zip(networks_state(resumed), networks_state(straight), strict=True))
    assert resumed.step == 6 and resumed.history == straight.history
    assert torch.equal(resumed.sample_latents, chosen)
    assert not list(tmp_path.glob("*.partial"))


def test_checkpoint_of_another_config_is_refused(images, tmp_path):
    GanTrainer(TINY, seed=0, device=CPU).save(tmp_path / "run.pt")
    other = GanTrainer(GanConfig(image_size=32, latent_dim=16, generator_width=8, discriminator_width=8,
                                 batch_size=4), seed=0, device=CPU)
    with pytest.raises(ValueError, match="trained with"):
        other.load_state_dict(torch.load(tmp_path / "run.pt", weights_only=True))


RAN = []


def _run_code(message):
    RAN.append(message)
    return {}


class Payload:
    def __reduce__(self):
        return _run_code, ("a checkpoint ran code",)


def test_loading_a_checkpoint_cannot_run_code(tmp_path):
    torch.save({"format": 1, "evil": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(pickle.UnpicklingError):
        GanTrainer.load(tmp_path / "evil.pt", CPU)
    assert RAN == []


def test_load_asks_for_weights_only_explicitly(tmp_path, monkeypatch):
    """Explicitly: TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD only turns off an unspecified weights_only."""
    GanTrainer(TINY, seed=0, device=CPU).save(tmp_path / "run.pt")
    calls, real_load = [], torch.load
    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: calls.append(kwargs) or real_load(*args, **kwargs))
    GanTrainer.load(tmp_path / "run.pt", CPU)
    assert [kwargs.get("weights_only") for kwargs in calls] == [True]


def test_fixed_latents_give_the_same_grid_and_keep_train_mode(images):
    trainer = GanTrainer(TINY, seed=5, device=CPU)
    trainer.train_steps(2, images)
    grid = sample_grid(trainer)
    assert same_image(grid, sample_grid(trainer)) and trainer.generator.training
    assert grid.size == (4 * (32 + 2) + 2,) * 2  # 16 samples, 4 a row, 2 px apart
    assert torch.equal(GanTrainer(TINY, seed=5, device=CPU).sample_latents, trainer.sample_latents)
    with pytest.raises(ValueError, match="needs latents"):
        sample_grid(trainer.generator)


def test_larger_size_feeds_a_larger_latent_grid():
    generator = Generator(TINY, seed=1)
    assert [image.size for image in sample(generator, 2, seed=4)] == [(32, 32)] * 2
    large = sample(generator, 2, seed=4, size=64)
    assert [image.size for image in large] == [(64, 64)] * 2 and generator.training
    assert same_image(large[1], sample(generator, 2, seed=4, size=64)[1])
    assert sample(generator, 1, seed=4, size=40)[0].size == (40, 40)  # steps of 32 / 4 = 8 px
    for size in (36, 24):
        with pytest.raises(ValueError, match="32 pixels or more in steps of 8"):
            sample(generator, 1, seed=4, size=size)


def test_slerp_keeps_to_the_sphere():
    a, b = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    assert torch.equal(slerp(a, b, 0.0), a) and torch.equal(slerp(a, b, 1.0), b)
    assert torch.allclose(slerp(a, b, 0.5), (a + b) / math.sqrt(2))
    u, v = torch.nn.functional.normalize(torch.randn(2, 64, generator=torch.Generator().manual_seed(0)), dim=1)
    for t in torch.linspace(0, 1, 9).tolist():
        assert slerp(u, v, t).norm().item() == pytest.approx(1.0, abs=1e-5)
    assert torch.allclose(slerp(a, 2 * a, 0.5), 1.5 * a)  # parallel: the line


def test_latent_walk_loops_back_to_its_start():
    path = walk_latents(16, seed=2, frames=12, points=4)  # [12, 16, 1, 1]
    stops = random_latents(4, 16, seed=2)
    assert path.shape == (12, 16, 1, 1) and torch.equal(path[0], stops[0]) and torch.equal(path[3], stops[1])
    steps = (path.roll(-1, dims=0) - path).flatten(1).norm(dim=1)  # the last one closes the loop
    assert steps[-1] < 1.5 * steps.median() < (stops[0] - stops[2]).norm()

    generator = Generator(TINY, seed=1)
    frames = latent_walk(generator, seed=2, frames=12, points=4)
    assert len(frames) == 12 and {frame.size for frame in frames} == {(32, 32)}
    start = np.asarray(render(generator, stops[:1])[0], dtype=int)
    assert np.abs(np.asarray(frames[0], dtype=int) - start).max() <= 1  # batch of 12 against 1: rounding at most


def test_an_empty_dataset_is_a_clear_error():
    with pytest.raises(ValueError, match="at least one training image"):
        load_dataset([], 32, CPU)
    with pytest.raises(ValueError, match="no training images"):
        GanTrainer(TINY, seed=0, device=CPU).train_steps(1, torch.empty(0, 3, 32, 32))
    with pytest.raises(ValueError, match=r"must be \[N, 3, 32, 32\]"):
        GanTrainer(TINY, seed=0, device=CPU).train_steps(1, torch.zeros(2, 3, 64, 64))


def test_dataset_is_centre_cropped_square_rgb_in_minus_one_to_one(tmp_path):
    wide = Image.new("RGB", (90, 30), (0, 0, 255))
    ImageDraw.Draw(wide).rectangle((30, 0, 59, 29), fill=(255, 0, 0))  # the centred square is red
    clear = Image.new("RGBA", (20, 20), (0, 0, 0, 0))  # transparent: white
    clear.save(tmp_path / "clear.png")
    data = load_dataset([wide, tmp_path / "clear.png"], 32, CPU)
    assert data.shape == (2, 3, 32, 32) and data.dtype == torch.float32
    assert torch.allclose(data[0, :, 2:-2, 2:-2], torch.tensor([1.0, -1.0, -1.0])[:, None, None], atol=0.02)
    assert torch.equal(data[1], torch.ones(3, 32, 32))


def test_mirror_flips_some_batches():
    image = Image.new("RGB", (32, 32), (0, 0, 0))
    ImageDraw.Draw(image).rectangle((0, 0, 9, 31), fill=(255, 255, 255))  # a white band on the left only
    data = load_dataset([image], 32, CPU)  # [1, 3, 32, 32]
    for mirror, expected in ((True, {"as is", "flipped"}), (False, {"as is"})):
        trainer = GanTrainer(GanConfig(image_size=32, latent_dim=16, generator_width=4, discriminator_width=4,
                                       batch_size=8, mirror=mirror), seed=0, device=CPU)
        seen = set()
        for real in trainer.draw_batch(data):
            assert torch.equal(real, data[0]) or torch.equal(real, data[0].flip(2))
            seen.add("as is" if torch.equal(real, data[0]) else "flipped")
        assert seen == expected


def test_loss_chart_draws_both_networks(images):
    trainer = GanTrainer(TINY, seed=0, device=CPU)
    trainer.train_steps(3, images)
    chart = gan.loss_chart(trainer)
    colours = {colour for _, colour in chart.getcolors(chart.width * chart.height)}
    assert chart.size == (480, 200) and {(88, 101, 242), (237, 66, 69)} <= colours
