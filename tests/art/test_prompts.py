import pytest

from bot.art.prompts import WeightedPrompt, parse_weighted_prompts


def test_weights_and_defaults():
    assert parse_weighted_prompts("a lighthouse | stormy sea:0.5 | text:-1 | glow:10") == [
        WeightedPrompt("a lighthouse", 1.0), WeightedPrompt("stormy sea", 0.5), WeightedPrompt("text", -1.0),
        WeightedPrompt("glow", 10.0),
    ]


def test_colon_that_is_not_a_weight_stays_in_the_text():
    text = "a sign that says: hello"
    assert parse_weighted_prompts(text) == [WeightedPrompt(text, 1.0)]
    assert parse_weighted_prompts("time 12:30 :2") == [WeightedPrompt("time 12:30", 2.0)]


@pytest.mark.parametrize("text", ["a widescreen poster 16:9", "time 12:30", "ratio 4:-1"])
def test_a_colon_after_a_digit_is_text_not_a_weight(text):
    assert parse_weighted_prompts(text) == [WeightedPrompt(text, 1.0)]


@pytest.mark.parametrize("weight", ["nan", "inf", "-inf", "10.5", "-11", "1e9"])
def test_weights_must_be_finite_and_at_most_10(weight):
    with pytest.raises(ValueError, match="between -10 and 10") as error:
        parse_weighted_prompts(f"a cat | fog:{weight}")
    assert weight in str(error.value)


def test_empty_parts_are_dropped():
    assert parse_weighted_prompts(" | a cat ||  ") == [WeightedPrompt("a cat", 1.0)]


@pytest.mark.parametrize("text", ["", " | ", "text:-1", "a:0"])
def test_no_positive_prompt_is_an_error(text):
    with pytest.raises(ValueError, match="positive weight"):
        parse_weighted_prompts(text)


def test_weights_summing_to_zero_is_an_error():
    with pytest.raises(ValueError, match="add up to 0"):
        parse_weighted_prompts("a cat:1 | a dog:-1")
