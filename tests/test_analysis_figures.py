"""Figures: what is drawn (points per curve, colours per τ, the n / CI caption), and the warnings
for curves of one point and CIs over few seeds. Checked on the matplotlib artists, not on pixels."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib.colors as mcolors
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from softq_lab.analysis import cli, plots
from softq_lab.analysis.load import AnalysisWarning

from fake_runs import tau_grid, write_sweep

TAUS = [0, 0.01, 0.1, 1.0]
CURVE_FIGURES = ("bias_vs_steps", "return_vs_steps", "q_vs_true")


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOFTQ_LAB_CACHE", str(tmp_path / "cache"))


def figures_of(root: Path, *extra: str) -> tuple[dict[str, Figure], list[str]]:
    """The figures `softq-analyze root` would write, and the warnings it would print."""
    args = cli.build_parser().parse_args([str(root), "--out", "unused", "--n-resamples", "99",
                                          *extra])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AnalysisWarning)
        results = cli.analyze(cli.load(args), args)
    return results.figures, [str(w.message) for w in caught
                             if issubclass(w.category, AnalysisWarning)]


def data_lines(fig: Figure) -> list[Line2D]:
    """The mean curves of a figure (labelled lines, not reference lines or error bars)."""
    return [line for ax in fig.axes for line in ax.get_lines()
            if not line.get_label().startswith("_") and len(line.get_xdata()) > 0]


def points_of(ax, label: str) -> list[Line2D]:
    """The data points of the error bars labelled `label` in `ax`."""
    return [c.lines[0] for c in ax.containers if c.get_label() == label]


def caption_of(fig: Figure) -> str:
    return " ".join(legend.get_title().get_text() for legend in fig.legends).replace("\n", " ")


def test_one_evaluation_per_run_is_drawn_as_one_marker_per_curve_with_one_warning_per_figure(
    tmp_path: Path,
) -> None:
    # the user's case: eval.every (1000) beyond total_steps (500) leaves one evaluation per run
    write_sweep(tmp_path / "runs", tau_grid([0, 0.1], [0, 1]), total_steps=500, eval_every=1000)
    figures, messages = figures_of(tmp_path / "runs")
    for name in CURVE_FIGURES:
        lines = data_lines(figures[name])
        assert len(lines) >= 2, name  # hard max and τ = 0.1 (q_vs_true: and their truths)
        for line in lines:
            assert len(line.get_xdata()) == 1 and line.get_xdata()[0] == 500, name
            assert line.get_marker() == "o", name
        about = [m for m in messages if m.startswith(f"figure {name}:")]
        assert len(about) == 1, (name, messages)
        assert "fewer than 2 points" in about[0] and "fewer than 5 seeds" in about[0]
        assert "(n = 2)" in about[0]
    # the CI of a one-point curve is an error bar: 2 seeds, so its length is finite and positive
    (ax,) = figures["return_vs_steps"].axes
    bars = [c for c in ax.containers if c.get_label() == "_ci"]
    assert len(bars) == 2
    for bar in bars:
        (segments,) = bar.lines[2]
        (x0, y0), (x1, y1) = segments.get_segments()[0]
        assert x0 == x1 == 500 and y1 > y0


def test_curves_with_many_points_and_five_seeds_have_no_markers_and_no_warning(
    tmp_path: Path,
) -> None:
    write_sweep(tmp_path / "runs", tau_grid([0, 0.1], range(5)), total_steps=1000, eval_every=100)
    figures, messages = figures_of(tmp_path / "runs")
    assert not [m for m in messages if m.startswith("figure ")], messages
    for name in CURVE_FIGURES:
        for line in data_lines(figures[name]):
            assert len(line.get_xdata()) == 101  # the common step grid (--grid-points)
            assert line.get_marker() in ("None", None, "")
        assert "n = 5 seeds per config" in caption_of(figures[name])


def test_every_figure_states_the_seeds_per_config_and_the_ci_method(tmp_path: Path) -> None:
    grid = [*tau_grid([0, 0.1], [0, 1, 2]), *tau_grid([1.0], [0, 1])]
    write_sweep(tmp_path / "runs", grid, env="maxbias", maxbias=True)
    figures, messages = figures_of(tmp_path / "runs", "--curve", "learner/q_mean")
    assert set(figures) == {*CURVE_FIGURES, "final_bias_vs_tau", "maxbias_left",
                            "curve_learner_q_mean"}
    for name, fig in figures.items():
        text = caption_of(fig)
        assert "n = 2–3 seeds per config" in text, (name, text)
        assert "95% percentile-bootstrap CI of the mean over seeds" in text, (name, text)
        assert sum(m.startswith(f"figure {name}:") for m in messages) == 1, name
    # later episode bins hold only the runs that lasted that many episodes
    assert "fewer at points not every run reached" in caption_of(figures["maxbias_left"])
    assert "fewer at points" not in caption_of(figures["return_vs_steps"])


def test_each_tau_has_one_colour_in_every_figure_black_for_the_hard_max(tmp_path: Path) -> None:
    write_sweep(tmp_path / "runs", tau_grid(TAUS, [0, 1]), env="maxbias", maxbias=True)
    figures, _ = figures_of(tmp_path / "runs")
    expected = {tau: mcolors.to_hex(plots.tau_color(tau, TAUS)) for tau in TAUS}
    assert expected[0] == "#000000"
    assert len(set(expected.values())) == len(TAUS)
    # sequential: lightness grows with τ, and the smallest τ > 0 is far from black
    lightness = [np.mean(mcolors.to_rgb(expected[t])) for t in TAUS[1:]]
    assert lightness == sorted(lightness) and lightness[0] > 0.3
    for name, fig in figures.items():
        colours: dict[float, set[str]] = {}
        if name == "final_bias_vs_tau":  # x is τ: each τ's point in its colour
            for ax in fig.axes:
                for point in points_of(ax, "_tau"):
                    colours.setdefault(float(point.get_xdata()[0]), set()).add(
                        mcolors.to_hex(point.get_color()))
        for line in data_lines(fig):
            label = line.get_label()
            if "τ" not in label:  # final_bias_vs_tau's grey line through an operator's points
                continue
            tau = 0.0 if label.startswith("hard max") else float(label.split("= ")[1])
            colours.setdefault(tau, set()).add(mcolors.to_hex(line.get_color()))
        shown = TAUS[1:] if name == "final_bias_vs_tau" else TAUS  # there τ = 0 is a line
        assert set(shown) <= set(colours), name
        assert colours == {tau: {expected[tau]} for tau in colours}, name


def test_figures_are_one_or_two_paper_columns_wide(tmp_path: Path) -> None:
    write_sweep(tmp_path / "runs", tau_grid([0, 0.1], [0, 1]))
    figures, _ = figures_of(tmp_path / "runs")
    widths = {name: fig.get_figwidth() for name, fig in figures.items()}
    assert widths["return_vs_steps"] == plots.COLUMN_WIDTH == 3.3
    assert widths["bias_vs_steps"] == plots.PAGE_WIDTH == 7.0  # two panels: hard and soft return
    for fig in figures.values():
        sizes = {t.get_fontsize() for t in fig.findobj(lambda a: hasattr(a, "get_fontsize"))}
        assert max(sizes) <= 8


def test_figures_are_written_as_png_and_pdf(tmp_path: Path) -> None:
    write_sweep(tmp_path / "runs", tau_grid([0, 0.1], [0, 1]), total_steps=500, eval_every=1000)
    figures, _ = figures_of(tmp_path / "runs")
    paths = plots.save(figures["return_vs_steps"], tmp_path / "figures", "return_vs_steps")
    png, pdf = paths
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pdf.read_bytes()[:5] == b"%PDF-"
