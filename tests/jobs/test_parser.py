from dataclasses import dataclass

import pytest

from bot.art.technique import param
from bot.art.techniques import TECHNIQUES
from bot.jobs.parser import SEED_MAX, Limits, SpecError, limit_floor, options_help, parse_job

LIMITS = Limits(max_steps=1000, max_size=512)


def imagine(text=None, options=None, limits=LIMITS, seed=1):
    return parse_job("imagine", options or {}, limits=limits, text=text, seed=seed)


def test_weighted_prompt_syntax_passes_through():
    job = imagine("a lighthouse in a storm | fog:0.5 | text:-1 --steps 150")
    assert job.spec.config.prompt == "a lighthouse in a storm | fog:0.5 | text:-1"
    assert job.spec.config.steps == 150
    assert job.notes == []


def test_negative_prompt_via_no_quoted_or_not():
    assert imagine('a cat --no "blurry, text"').spec.config.negative == "blurry, text"
    assert imagine("a cat --no blurry, text --steps 5").spec.config.negative == "blurry, text"
    assert imagine("a cat --no=watermark").spec.config.negative == "watermark"


def test_int_float_choice_and_optional_path_flags():
    text = "a cat --steps 20 --lr 0.1 --param fourier --init-image /tmp/x.png --init_strength 0.3"
    config = imagine(text).spec.config
    assert (config.steps, config.lr, config.param) == (20, 0.1, "fourier")
    assert config.init_image == "/tmp/x.png" and config.init_strength == 0.3
    assert imagine("a cat --param PIXELS").spec.config.param == "pixels"  # choices ignore case


@dataclass(frozen=True)
class ToyConfig:
    loud: bool = param(False, help="shout")
    label: str | None = param(None, help="a label")
    count: int | None = param(None, help="how many", min=0, max=9)


class ToyTechnique:
    name = "toy"
    config_type = ToyConfig

    def run(self, config, seed, ctx):
        raise NotImplementedError


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(TECHNIQUES, "toy", ToyTechnique())
    def parse(text, options=None):
        return parse_job("toy", options or {}, limits=LIMITS, text=text, seed=1).spec.config

    return parse


def test_bool_and_optional_flags(toy):
    assert toy("--loud").loud is True
    assert toy("--loud no --count 3").loud is False
    assert toy("--loud=yes --label 'two words'") == ToyConfig(loud=True, label="two words")
    assert toy("--count none").count is None
    assert toy(None, {"loud": True, "count": 4}) == ToyConfig(loud=True, count=4)
    with pytest.raises(SpecError, match="true or false"):
        toy("--loud maybe")


def test_phone_dashes_and_smart_quotes():
    text = "a cat \u2014 at night \u2014steps 20 \u2013size 256 \u2014no \u201cblurry, text\u201d"
    config = imagine(text).spec.config
    assert config.prompt == "a cat \u2014 at night"  # a dash followed by a space is prose
    assert (config.steps, config.size, config.negative) == (20, 256, "blurry, text")


def test_quoted_values_and_unclosed_quote():
    assert imagine("a cat --no 'dog, \"bird\"'").spec.config.negative == 'dog, "bird"'
    with pytest.raises(SpecError, match="quote"):
        imagine('a cat --no "blurry')


def test_unknown_flag_lists_known_ones():
    with pytest.raises(SpecError) as error:
        imagine("a cat --stepz 10")
    assert "--stepz" in str(error.value) and "--steps" in str(error.value) and "--seed" in str(error.value)
    with pytest.raises(SpecError, match="Unknown option --colour"):
        imagine("a cat", {"colour": "red"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a cat --steps ten", "steps must be a whole number"),
        ("a cat --steps 2.5", "whole number"),
        ("a cat --lr fast", "lr must be a number"),
        ("a cat --lr nan", "lr must be a number"),
        ("a cat --param blocks", "param must be one of stack, pixels, fourier"),
        ("a cat --steps", "needs a value"),
        ("a cat --cutn 500", r"cutn must be between 1 and 128 \(you gave 500\)"),
        ("a cat --steps 0", r"steps must be between 1 and 5000 \(you gave 0\)"),
        ("--steps 10", "Write a prompt"),
        ("a cat --seed -1", f"seed must be between 0 and {SEED_MAX}"),
        ("a cat --seed x", "seed must be a whole number"),
    ],
)
def test_bad_values_say_what_to_fix(text, message):
    with pytest.raises(SpecError, match=message):
        imagine(text)


def test_field_range_rejects_even_when_clamping():
    with pytest.raises(SpecError, match=r"between 1 and 5000 \(you gave 9000\)"):
        imagine("a cat --steps 9000", limits=Limits(max_steps=100_000, max_size=4096, clamp=True))


def test_guild_limit_clamps_with_a_note():
    job = imagine("a cat --steps 3000 --size 1024")
    assert (job.spec.config.steps, job.spec.config.size) == (1000, 512)
    assert job.notes == [
        "steps clamped to 1000, this server's limit", "size clamped to 512, this server's limit"
    ]


def test_guild_limit_rejects_when_clamping_is_off():
    with pytest.raises(SpecError, match=r"steps must be at most 1000 on this server \(you gave 3000\)"):
        imagine("a cat --steps 3000", limits=Limits(max_steps=1000, max_size=512, clamp=False))


def test_defaults_above_the_guild_limit_are_clamped_even_when_clamping_is_off():
    job = parse_job("cppn", {}, limits=Limits(max_steps=50, max_size=128, clamp=False), seed=1)
    assert (job.spec.config.steps, job.spec.config.size) == (50, 128)
    assert len(job.notes) == 2


def test_seed_given_or_random():
    assert imagine("a cat --seed 3").spec.seed == 3
    assert imagine("a cat", {"seed": 4}).spec.seed == 4
    assert imagine("a cat", seed=5).spec.seed == 5
    seeds = {parse_job("imagine", {}, limits=LIMITS, text="a cat").spec.seed for _ in range(5)}
    assert len(seeds) > 1 and all(0 <= s <= SEED_MAX for s in seeds)


def test_inline_flags_override_slash_options():
    job = imagine("a cat --steps 60 --seed 9", {"steps": 50, "size": 128, "seed": 8})
    assert (job.spec.config.steps, job.spec.config.size, job.spec.seed) == (60, 128, 9)
    assert imagine("a dog", {"prompt": "a cat"}).spec.config.prompt == "a dog"
    assert imagine(None, {"prompt": "a cat", "no": "text", "negative": None}).spec.config.negative == "text"


def test_required_files_and_post_init_errors():
    with pytest.raises(SpecError, match="--target"):
        parse_job("nca", {}, limits=LIMITS)
    with pytest.raises(SpecError, match="--content"):
        parse_job("style", {"style": "b.png"}, limits=LIMITS)
    with pytest.raises(SpecError, match="batch-size"):
        parse_job("nca", {}, limits=LIMITS, text="--target e.png --pool-size 4 --batch-size 8")
    with pytest.raises(SpecError, match="takes no prompt"):
        parse_job("cppn", {}, limits=LIMITS, text="a spiral --size 64")


def test_unknown_technique_lists_the_known_ones():
    with pytest.raises(SpecError, match="imagine, compare, style, dream, nca, cppn"):
        parse_job("paint", {}, limits=LIMITS)


def test_options_help_has_ranges_defaults_and_seed():
    rows = dict(options_help("imagine"))
    assert "between 1 and 128" in rows["--cutn"] and "default 32" in rows["--cutn"]
    assert "--no" in rows and "required" in rows["--prompt"]
    assert "stack, pixels, fourier" in rows["--param"]
    assert "--seed" in rows


def test_a_guild_cap_below_a_techniques_minimum_is_lifted_to_that_minimum():
    parsed = parse_job("imagine", {}, limits=Limits(max_steps=1000, max_size=16), text="a cat --size 300")
    assert parsed.spec.config.size == 32
    assert limit_floor("size") == 32 and limit_floor("steps") == 1


def compare(text, limits=LIMITS):
    return parse_job("compare", {}, limits=limits, text=text, seed=1)


def test_a_compares_steps_count_once_per_variant_against_the_guild_limit():
    job = compare("a cat --what lr --steps 400")  # 3 variants x 400 steps is over the 1000 allowed
    assert job.spec.config.steps == 333
    assert job.notes == ["steps clamped to 333 (× 3 variants), this server's limit"]
    assert compare("a cat --what lr --steps 333").notes == []
    assert compare("a cat --what seed --values 1,2,3,4 --steps 300").spec.config.steps == 250
    assert compare("a cat --what param --size 512").spec.config.size == 512  # a size is per image


def test_a_compare_over_the_guild_limit_is_refused_when_clamping_is_off():
    strict = Limits(max_steps=1000, max_size=512, clamp=False)
    with pytest.raises(SpecError, match=r"steps × 3 variants must be at most 1000 on this server, so at most 333 "
                                        r"steps each \(you gave 400\)"):
        compare("a cat --what cutn --steps 400", limits=strict)
    assert compare("a cat --what cutn --values 4,8 --steps 500", limits=strict).spec.config.steps == 500
    default_steps = compare("a cat --what tv_weight", limits=Limits(max_steps=300, max_size=512, clamp=False))
    assert default_steps.spec.config.steps == 100 and len(default_steps.notes) == 1


def test_a_guild_cap_below_a_compares_variants_still_lets_each_take_one_step():
    assert compare("a cat --what lr", limits=Limits(max_steps=2, max_size=512)).spec.config.steps == 1


@pytest.mark.parametrize(("text", "message"), [
    ("a cat", "needs --what"),
    ("a cat --what size", "what must be one of param, lr, cutn, tv_weight, seed"),
    ("a cat --what lr --values 0.01", r"--values takes 2 to 4 values of lr"),
    ("a cat --what lr --values 0.01,0.02,0.03,0.04,0.05", r"takes 2 to 4 values of lr .* \(you gave 5\)"),
    ("a cat --what lr --values 0.05,2", r"--values: lr must be between 0.0001 and 1 \(you gave 2\)"),
    ("a cat --what cutn --values 4,lots", "--values for cutn must be whole numbers"),
    ("a cat --what param --values stack,voxels", "--values: param must be one of stack, pixels, fourier"),
    ("a cat --what tv_weight --values 0.1,0.10", "--values has tv-weight 0.1 twice"),
])
def test_a_compares_bad_values_say_what_to_fix(text, message):
    with pytest.raises(SpecError, match=message):
        compare(text)
