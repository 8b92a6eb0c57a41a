import pytest

from bot.art.charts import LINE, PALETTE, curves_chart, loss_chart


def colours(image):
    return {colour for _, colour in image.getcolors(image.width * image.height)}


def test_loss_chart_draws_one_line():
    chart = loss_chart([3.0, 2.0, float("nan"), 1.0, 0.5], width=300, height=120)
    assert chart.size == (300, 120) and LINE in colours(chart)


def test_loss_chart_with_too_few_steps_says_so():
    assert LINE not in colours(loss_chart([1.0]))


def test_curves_chart_draws_each_curve_in_its_colour():
    chart = curves_chart({"discriminator": [1.4, 1.1, 0.8, 1.0], "generator": [0.7, 1.6, 2.4, 2.0]})
    assert chart.size == (480, 200) and {PALETTE[0], PALETTE[1]} <= colours(chart)


def test_curves_chart_with_too_few_steps_draws_no_line():
    assert PALETTE[0] not in colours(curves_chart({"discriminator": [1.0], "generator": []}))
    diverged = curves_chart({"discriminator": [float("nan")] * 3, "generator": [float("inf")] * 3})
    assert PALETTE[0] not in colours(diverged) and PALETTE[1] not in colours(diverged)


def test_curves_chart_has_a_colour_per_curve_at_most():
    with pytest.raises(ValueError, match="at most"):
        curves_chart({str(index): [1.0, 2.0] for index in range(len(PALETTE) + 1)})
