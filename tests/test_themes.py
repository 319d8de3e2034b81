"""The palette: Okabe-Ito hues, text contrast of at least 4.5:1, roles told apart with colour-vision deficiencies."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest

from explainer.themes import HEAT_ROLES, OKABE_ITO, SURFACE_ROLES, TEXT_ROLES, THEMES, Theme, contrast_ratio, mix

#: Machado, Oliveira & Fernandes (2009), severity 1.0: linear-RGB simulation of each dichromacy.
CVD = {
    "protanopia": np.array(
        [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]]
    ),
    "deuteranopia": np.array(
        [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]]
    ),
    "tritanopia": np.array(
        [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]]
    ),
}
#: The roles every renderer colours, with the Okabe-Ito hue each is drawn in.
ROLE_HUES = {
    "param_border": "blue",
    "op_border": "yellow",
    "loss_border": "reddish_purple",
    "grad": "vermillion",
    "update": "bluish_green",
}


def _rgb(colour: str) -> np.ndarray:
    h = {"white": "ffffff"}.get(colour, colour).lstrip("#")
    return np.array([int(h[i : i + 2], 16) / 255 for i in (0, 2, 4)])


def _linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _lab(lin: np.ndarray) -> np.ndarray:
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = m @ np.clip(lin, 0, 1) / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


@pytest.mark.parametrize("theme", THEMES.values(), ids=THEMES.keys())
def test_every_text_colour_reads_on_every_surface(theme: Theme) -> None:
    worst = min((contrast_ratio(getattr(theme, t), getattr(theme, s)), t, s) for t in TEXT_ROLES for s in SURFACE_ROLES)
    assert worst[0] >= 4.5, worst


@pytest.mark.parametrize("theme", THEMES.values(), ids=THEMES.keys())
def test_panel_numbers_read_on_every_heat_colour(theme: Theme) -> None:
    shades = [mix(theme.panel, getattr(theme, h), k / 20) for h in HEAT_ROLES for k in range(21)]
    assert min(contrast_ratio(theme.text, c) for c in shades) >= 4.5


def test_contrast_ratio_matches_wcag_examples() -> None:
    assert contrast_ratio("#000000", "#FFFFFF") == pytest.approx(21.0)
    assert contrast_ratio("white", "#777777") == pytest.approx(4.48, abs=0.01)


@pytest.mark.parametrize("theme", THEMES.values(), ids=THEMES.keys())
def test_roles_have_okabe_ito_hues(theme: Theme) -> None:
    for role, name in ROLE_HUES.items():
        h_theme = colorsys.rgb_to_hls(*_rgb(getattr(theme, role)))[0]
        h_ref = colorsys.rgb_to_hls(*_rgb(OKABE_ITO[name]))[0]
        diff = min(abs(h_theme - h_ref), 1 - abs(h_theme - h_ref)) * 360
        assert diff < 15, (theme.name, role, diff)


@pytest.mark.parametrize("theme", THEMES.values(), ids=THEMES.keys())
@pytest.mark.parametrize("kind", CVD)
def test_roles_stay_apart_with_colour_vision_deficiencies(theme: Theme, kind: str) -> None:
    """Parameter, operation, loss, gradient and update colours stay distinguishable (CIELAB ΔE ≥ 10)."""
    seen = {role: _lab(CVD[kind] @ _linear(_rgb(getattr(theme, role)))) for role in ROLE_HUES}
    roles = list(seen)
    worst = min((float(np.linalg.norm(seen[a] - seen[b])), a, b) for i, a in enumerate(roles) for b in roles[i + 1 :])
    assert worst[0] >= 10, worst
