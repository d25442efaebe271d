"""Text colours of static/css/app.css meet WCAG AA (4.5:1) on every background text sits on,
computed with WCAG's relative luminance, not guessed. The browser tests' axe run checks the
rendered pages; this names the colour that broke it."""

import re
from pathlib import Path

import pytest

CSS = Path(__file__).resolve().parents[2] / "static" / "css" / "app.css"
# The page, cards and the tinted rows, badges and messages that carry muted text.
BACKGROUNDS = [
    "#ffffff",
    "#f7f8fb",
    "#fff6f5",
    "#eef1f8",
    "#eef4ff",
    "#fff4d6",
    "#e7f6ec",
    "#fdecea",
]


def luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def variable(name: str) -> str:
    return re.search(rf"--{name}:\s*(#[0-9a-fA-F]{{6}})", CSS.read_text()).group(1)


def test_the_contrast_formula_matches_known_pairs():
    assert contrast("#000000", "#ffffff") == pytest.approx(21)
    assert contrast("#6b7385", "#f7f8fb") == pytest.approx(4.48, abs=0.01)  # the grey


@pytest.mark.parametrize("name", ["ink", "muted", "accent"])
@pytest.mark.parametrize("background", BACKGROUNDS)
def test_text_colours_reach_aa_on_every_background(name, background):
    assert contrast(variable(name), background) >= 4.5


@pytest.mark.parametrize("colour", ["#b42318", "#067647"])  # negative / positive figures
@pytest.mark.parametrize("background", BACKGROUNDS)
def test_status_colours_reach_aa(colour, background):
    assert contrast(colour, background) >= 4.5
