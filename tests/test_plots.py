"""Pictures: every plot says what its axes are, and figures turn into PNG bytes for Jupyter."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from minigen import plots


def labelled(fig):
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            continue
        assert ax.get_xlabel() and ax.get_ylabel(), f"{ax.get_title()!r}: unlabelled axes"


@pytest.mark.parametrize(
    "make",
    [
        lambda: plots.scatter_2d(np.zeros((5, 2)), np.ones((5, 2)), np.zeros((1, 2)), "points"),
        lambda: plots.manifold(lambda codes: np.zeros((len(codes), 1, 8, 8)), n=12),
        lambda: plots.latent_scatter(np.random.default_rng(0).standard_normal((20, 4)), np.arange(20) % 10),
        lambda: plots.curves([{"epoch": 1, "loss": 2.0}, {"epoch": 2, "loss": 1.0}], ["loss"], "losses", "loss"),
    ],
)
def test_plots_label_their_axes(make):
    labelled(make())


def test_manifold_ticks_are_the_codes_decoded():
    fig = plots.manifold(lambda codes: np.zeros((len(codes), 1, 4, 4)), n=5)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["-1.3", "-0.5", "0.0", "0.5", "1.3"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1.3", "0.5", "0.0", "-0.5", "-1.3"]  # z2 grows upwards


def test_png_bytes_of_a_figure_and_of_an_empty_one():
    fig = Figure()
    assert plots.png_bytes(fig) is None  # nothing drawn: Jupyter falls back to the text
    fig.add_subplot().plot([0, 1])
    assert plots.png_bytes(fig).startswith(b"\x89PNG\r\n\x1a\n")


def test_outside_ipython_nothing_is_registered():
    from minigen.notebook import show_figures_in_notebooks

    assert show_figures_in_notebooks() is False
