"""Figures (matplotlib, Agg canvas: no display needed), each saved as PNG and PDF.

One panel per τ-comparison group (configs equal except in τ and operator); within a panel, one
colour per τ, the same in every figure (`tau_color`: black for the hard max, τ = 0, a sequential
colormap over τ > 0) and one line style per operator. Bands are the 95% bootstrap CIs of the mean
over seeds (see `aggregate.curve_stats`). A curve of at most `FEW_POINTS` points has a marker at
each, and one of a single point its CI as an error bar. Every figure's legend is titled with its
caption: the seeds per config (n) and the CI method. One warning per figure (`check_figure`) says
when a curve has fewer than 2 points or a CI rests on fewer than `MIN_SEEDS` seeds. Sizes are for a
paper: one column (3.3 in) for one panel per row, both columns (7 in) for more, 8 pt text.

- `bias_vs_steps`: over-estimation bias (hard and soft return) against steps.
- `return_vs_steps`: evaluation return against steps.
- `final_bias_vs_tau`: final bias against τ (log x); the hard max is a black line with its band.
- `q_vs_true`: estimated value q̂ at the start states (solid) and the true discounted return of the
  greedy policy from them (dashed) over training, as in van Hasselt et al. (2016); where only exact
  values are logged, mean q̂ against mean Q* over all state-action pairs.
- `maxbias_left`: fraction of episodes going left from A against episode, for MaxBias.
- `performance_profile`: across envs, the fraction of runs whose normalised score exceeds each
  threshold, per algorithm (rliable's performance profile; see `across_envs`).
- `iqm_across_envs`: across envs, each algorithm's IQM of normalised scores with its stratified
  bootstrap CI (rliable's aggregate plot).
"""

from __future__ import annotations

import functools
import math
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import EngFormatter

from softq_lab.analysis.aggregate import METRICS, Design, _groups, _sort, few_seeds, select
from softq_lab.analysis.load import warn

COLUMN_WIDTH = 3.3  # inches: one column of a two-column paper
PAGE_WIDTH = 7.0  # inches: both columns
PANEL_HEIGHT = 2.1  # inches per row of panels
#: Paper-size type: 8 pt text, 7 pt ticks and legends; TrueType fonts embedded in the PDF.
STYLE = {
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7,
    "ytick.labelsize": 7, "legend.fontsize": 7, "legend.title_fontsize": 7,
    "figure.titlesize": 8, "lines.linewidth": 1.2, "lines.markersize": 3.5,
    "pdf.fonttype": 42, "ps.fonttype": 42, "savefig.dpi": 300,
}
LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v")
HARD_COLOR = "black"
#: τ > 0 runs through this part of the colormap: its dark end would look like the hard max's black.
TAU_CMAP, TAU_RANGE = "viridis", (0.3, 0.9)
#: A curve with at most this many points is drawn with a marker at each point.
FEW_POINTS = 20
CI_METHOD = "95% percentile-bootstrap CI of the mean over seeds"
LABELS = {
    "overestimation/bias_hard": "bias vs hard return",
    "overestimation/bias_soft": "bias vs soft return",
    "eval/return_mean": "evaluation return",
    "train/episode_return": "training episode return",
    "final_bias_hard": "final bias vs hard return",
    "final_bias_soft": "final bias vs soft return",
    "maxbias/left": "MaxBias: episodes going left from A",
}


def save(fig: Figure, out_dir: Path, name: str) -> list[Path]:
    """Write `name.png` (300 dpi) and `name.pdf` (fonts embedded) into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    with matplotlib.rc_context(STYLE):
        for path in paths:
            fig.savefig(path)
    return paths


def paper_style(make: Callable[..., Figure | None]) -> Callable[..., Figure | None]:
    """Run a figure function under `STYLE` (fonts sized for a paper column)."""
    @functools.wraps(make)
    def wrapped(*args, **kwargs) -> Figure | None:
        with matplotlib.rc_context(STYLE):
            return make(*args, **kwargs)
    return wrapped


def tau_color(tau: float, taus: Sequence[float]) -> str | tuple[float, ...]:
    """The colour of τ in every figure: black for the hard max (τ = 0); for τ > 0, with
    τ₁ < … < τ_K the distinct τ > 0 of the sweep (`taus`) and τ = τ_k, the colormap `TAU_CMAP` at
    lo + (hi − lo)·(k − 1)/(K − 1), (lo, hi) = `TAU_RANGE` (the middle when K = 1): a sequential
    scale, dark to light as τ grows. A τ not in `taus` is grey."""
    if tau == 0:
        return HARD_COLOR
    positive = sorted({float(t) for t in taus if t > 0})
    if tau not in positive:
        return "grey"
    lo, hi = TAU_RANGE
    k = positive.index(tau)
    where = (lo + hi) / 2 if len(positive) == 1 else lo + (hi - lo) * k / (len(positive) - 1)
    return matplotlib.colormaps[TAU_CMAP](where)


class Styler:
    """Colour per τ (`tau_color`), line style and marker per operator, the same in every figure of
    one design."""

    def __init__(self, design: Design):
        table = design.table
        self.taus = sorted({float(t) for t in table.get("tau", pd.Series(dtype=float)).dropna()})
        operators = [] if "operator" not in table.columns else [
            o for o in dict.fromkeys(table["operator"].astype(str)) if o != "hard"]
        self.styles = {o: LINESTYLES[i % len(LINESTYLES)] for i, o in enumerate(operators)}
        self.markers = {o: MARKERS[i % len(MARKERS)] for i, o in enumerate(operators)}

    def color(self, tau: float) -> str | tuple[float, ...]:
        return tau_color(tau, self.taus)

    def style(self, setting: dict) -> dict:
        """Line keyword arguments and label of one (operator, τ)."""
        tau = float(setting.get("tau", math.nan))
        if tau == 0:
            return {"color": HARD_COLOR, "linestyle": "-", "label": "hard max (τ = 0)"}
        operator = str(setting.get("operator", ""))
        label = f"{operator} τ = {tau:g}" if operator else f"τ = {tau:g}"
        return {"color": self.color(tau), "linestyle": self.styles.get(operator, "-"),
                "label": label}


def seeds_text(ns: Sequence[int]) -> str:
    """`n = 3 seeds per config`, or `n = 2–5 seeds per config` when configs differ."""
    ns = sorted({int(n) for n in ns})
    if not ns:
        return "no seeds"
    counts = f"{ns[0]}" if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"
    return f"n = {counts} seed{'s' if ns[-1] > 1 else ''} per config"


def caption(ns: Sequence[int], shown: str = "lines: mean", ci: str = "bands",
            fewer_somewhere: bool = False) -> str:
    """What a figure shows: seeds per config (`ns`, one per config or curve) and the CI method;
    `fewer_somewhere`: some points rest on fewer seeds (runs that stopped early, episode bins
    not every run reached)."""
    fewer = " (fewer at points not every run reached)" if fewer_somewhere else ""
    return f"{shown} over {seeds_text(ns)}{fewer}; {ci}: {CI_METHOD}"


def check_figure(name: str, n_points: Sequence[int], ns: Sequence[int]) -> None:
    """One warning for figure `name` when a curve has fewer than 2 points (`n_points`, one per
    curve; drawn as markers) or a config's CIs rest on fewer than `MIN_SEEDS` seeds (`ns`: the
    seeds of each curve or config)."""
    problems = []
    single = sum(1 for k in n_points if k < 2)
    if single:
        problems.append(f"{single} of {len(n_points)} curves have fewer than 2 points (one "
                        "evaluation per run? eval.every ≥ total_steps); drawn as markers")
    few = few_seeds(ns)
    if few:
        problems.append(f"{few}: too few for a reliable bootstrap interval")
    if problems:
        warn(f"figure {name}: {'; '.join(problems)}")


def _panels(n_rows: int, n_cols: int, legend_rows: int = 2) -> tuple[Figure, np.ndarray]:
    """A figure one column wide (one panel per row) or a page wide (more), legend below."""
    width = COLUMN_WIDTH if n_cols == 1 else PAGE_WIDTH
    fig = Figure(figsize=(width, PANEL_HEIGHT * n_rows + 0.45 + 0.14 * legend_rows),
                 layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    return fig, axes


def _count_axis(ax: Axes, label: str) -> None:
    """An x axis of counts (steps, episodes) ticked as 10k, 1.5M: long labels would run together."""
    ax.set_xlabel(label)
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))


def _titles(design: Design) -> tuple[list[dict], str]:
    """The groups (as dicts of group keys), and a suptitle of the keys constant across groups."""
    groups = [g for g, _ in _groups(_sort(design.table, design.group_keys), design.group_keys)]
    constant = [k for k in design.group_keys if len({str(g[k]) for g in groups}) == 1]
    head = ", ".join(f"{k}={groups[0][k]}" for k in constant) if groups else ""
    return groups, head


def _chars(width_in: float) -> int:
    """About how many 8 pt characters fit in `width_in` inches."""
    return int(width_in * 16)


def _title(ax: Axes, what: str, group: dict, constant_title: str) -> None:
    """`what`, then (wrapped) the group keys that are not the same for every panel."""
    shown = [f"{k}={v}" for k, v in group.items() if f"{k}={v}" not in constant_title.split(", ")]
    width = _chars(ax.figure.get_figwidth() / ax.get_gridspec().ncols)
    ax.set_title("\n".join([what, *textwrap.wrap(", ".join(shown), width=width)]))


def _suptitle(fig: Figure, text: str) -> None:
    if text:
        fig.suptitle("\n".join(textwrap.wrap(text, width=_chars(fig.get_figwidth()))))


def _legend(fig: Figure, axes: np.ndarray, text: str, extra: Sequence[Line2D] = ()) -> None:
    """One legend below the panels, titled with the figure's caption `text` (seeds, CI method)."""
    handles: dict[str, Line2D] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if not label.startswith("_"):
                handles.setdefault(label, handle)
    for handle in extra:
        handles.setdefault(handle.get_label(), handle)
    ncols = max(1, min(len(handles), int(fig.get_figwidth() // 1.1)))
    title = "\n".join(textwrap.wrap(text, width=_chars(fig.get_figwidth()) - 6))
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=ncols,
               title=title, frameon=False)


def _legend_rows(styler: Styler, ncols: int) -> int:
    """Rows of `_legend` (entries: one per τ and operator, and two for the caption)."""
    return 2 + math.ceil((len(styler.taus) * max(1, len(styler.styles)) + 2) / ncols)


def ci_error(rows: pd.DataFrame) -> np.ndarray:
    """Error-bar lengths of `rows` (columns mean, ci_low, ci_high): [mean − ci_low; ci_high − mean],
    0 where the CI is NaN (fewer than two seeds)."""
    mean = rows["mean"].to_numpy(float)
    return np.nan_to_num(np.vstack([mean - rows["ci_low"].to_numpy(float),
                                    rows["ci_high"].to_numpy(float) - mean]))


class Curve(NamedTuple):
    """One drawn curve: its points, the seeds of its config (the most runs at any point) and the
    fewest runs at any point."""

    points: int
    seeds: int
    fewest: int


def _curves_panel(ax: Axes, stats: pd.DataFrame, design: Design, styler: Styler,
                  band: bool = True, **line_kw) -> list[Curve]:
    """Draw one line (and CI band) per (operator, τ) of `stats`, with markers when it has at most
    `FEW_POINTS` points, and a CI error bar when it has one. Returns what was drawn (for
    `check_figure` and `caption`)."""
    tau_keys = [k for k in design.keys if k not in design.group_keys]
    drawn = []
    for setting, rows in _groups(_sort(stats, tau_keys), tau_keys):
        rows = rows.sort_values("x")
        style = {**styler.style(setting), **line_kw}
        marker = "o" if len(rows) <= FEW_POINTS else None
        ax.plot(rows["x"], rows["mean"], marker=marker, **style)
        if band and len(rows) == 1:
            ax.errorbar(rows["x"], rows["mean"], yerr=ci_error(rows), color=style["color"],
                        capsize=2, linestyle="none", label="_ci")
        elif band:
            ax.fill_between(rows["x"], rows["ci_low"], rows["ci_high"], color=style["color"],
                            alpha=0.18, linewidth=0)
        drawn.append(Curve(len(rows), int(rows["n"].max()), int(rows["n"].min())))
    return drawn


def _report(fig: Figure, axes: np.ndarray, name: str, curves: Sequence[Curve],
            extra: Sequence[Line2D] = ()) -> None:
    """The legend with its caption, and `check_figure`'s warning, for a figure of curves."""
    seeds = [c.seeds for c in curves]
    ci = "bands (error bars on one-point curves)" if any(c.points == 1 for c in curves) \
        else "bands"
    _legend(fig, axes, caption(seeds, ci=ci, fewer_somewhere=any(c.fewest < c.seeds
                                                                  for c in curves)), extra)
    check_figure(name, [c.points for c in curves], seeds)


@paper_style
def curves_figure(curves: pd.DataFrame, design: Design, keys: Sequence[str], *,
                  name: str | None = None, xlabel: str = "environment steps",
                  ylabel: str | None = None, zero_line: bool = False,
                  ylim: tuple[float, float] | None = None) -> Figure | None:
    """Rows: groups; columns: the logged `keys`; lines: mean over seeds per (operator, τ). `name`
    (default `curve_<key>`) names the figure in warnings."""
    keys = [k for k in keys if (curves["metric"] == k).any()]
    if not keys:
        return None
    name = name or f"curve_{keys[0]}"
    groups, head = _titles(design)
    styler = Styler(design)
    fig, axes = _panels(len(groups), len(keys), _legend_rows(styler, 3 if len(keys) == 1 else 6))
    drawn: list[Curve] = []
    for row, group in enumerate(groups):
        for col, key in enumerate(keys):
            ax = axes[row, col]
            drawn += _curves_panel(ax, select(curves[curves["metric"] == key], group), design,
                                   styler)
            if zero_line:
                ax.axhline(0, color="grey", linewidth=0.8, linestyle=":")
            if ylim:
                ax.set_ylim(*ylim)
            _title(ax, LABELS.get(key, key), group, head)
            _count_axis(ax, xlabel)
            ax.set_ylabel(ylabel or LABELS.get(key, key))
            ax.grid(alpha=0.3)
    _suptitle(fig, head)
    _report(fig, axes, name, drawn)
    return fig


def bias_vs_steps(curves: pd.DataFrame, design: Design) -> Figure | None:
    """Over-estimation bias (mean q̂ − Monte-Carlo return) against steps, per τ, with CI bands."""
    return curves_figure(curves, design, ["overestimation/bias_hard", "overestimation/bias_soft"],
                         name="bias_vs_steps", ylabel="over-estimation bias", zero_line=True)


def return_vs_steps(curves: pd.DataFrame, design: Design) -> Figure | None:
    """Evaluation return (else training episode return) against steps, per τ, with CI bands."""
    key = "eval/return_mean" if (curves["metric"] == "eval/return_mean").any() \
        else "train/episode_return"
    return curves_figure(curves, design, [key], name="return_vs_steps", ylabel="return")


@paper_style
def final_bias_vs_tau(
    summary: pd.DataFrame, design: Design,
    metrics: Sequence[str] = ("final_bias_hard", "final_bias_soft"),
) -> Figure | None:
    """Final bias against τ (log x): per operator a grey line through its τ, each τ's mean in that
    τ's colour with its CI error bar; the hard max a black horizontal line with its CI band."""
    summary = summary[summary["n"] > 0]  # a config whose runs all diverged has no mean
    metrics = [m for m in metrics if (summary["metric"] == m).any()]
    if not metrics or "tau" not in summary.columns:
        return None
    groups, head = _titles(design)
    styler = Styler(design)
    fig, axes = _panels(len(groups), len(metrics), 3)
    ops = [k for k in design.keys if k == "operator"]
    ns: list[int] = []
    for row, group in enumerate(groups):
        for col, metric in enumerate(metrics):
            ax = axes[row, col]
            rows = select(summary[summary["metric"] == metric], group)
            for _, h in rows[rows["tau"] == 0].iterrows():
                ax.axhline(h["mean"], color=HARD_COLOR, label="hard max (τ = 0)")
                if np.isfinite(h["ci_low"]):
                    ax.axhspan(h["ci_low"], h["ci_high"], color=HARD_COLOR, alpha=0.12,
                               linewidth=0)
            for setting, sub in _groups(rows[rows["tau"] > 0], ops):
                sub = sub.sort_values("tau")
                operator = str(setting.get("operator", ""))
                marker = styler.markers.get(operator, "o")
                ax.plot(sub["tau"], sub["mean"], color="grey", linestyle=styler.styles.get(
                    operator, "-"), marker=marker, markerfacecolor="none",
                    label=f"{operator or 'τ > 0'} (mean, 95% CI)")
                for i in range(len(sub)):
                    point = sub.iloc[[i]]
                    ax.errorbar(point["tau"], point["mean"], yerr=ci_error(point),
                                color=styler.color(float(point["tau"].iloc[0])), marker=marker,
                                capsize=2, linestyle="none", label="_tau")
            ns += rows["n"].astype(int).tolist()
            ax.set_xscale("log")
            ax.axhline(0, color="grey", linewidth=0.8, linestyle=":")
            _title(ax, LABELS.get(metric, metric), group, head)
            ax.set_xlabel("τ (log scale)")
            ax.set_ylabel("final over-estimation bias")
            ax.grid(alpha=0.3, which="both")
    _suptitle(fig, head)
    _legend(fig, axes, caption(ns, "points: mean", "error bars and band"))
    check_figure("final_bias_vs_tau", [], ns)
    return fig


@paper_style
def q_vs_true(curves: pd.DataFrame, design: Design) -> Figure | None:
    """Estimated value (solid, with CI band) and true value (dashed) over training, per τ."""
    pairs = [("overestimation/q_start", "overestimation/return_start_hard",
              "value at start states", "q̂(s₀, a₀)", "true return"),
             ("exact/q_mean", "exact/qstar_mean", "mean value over (s, a)", "mean q̂", "mean Q*")]
    logged = set(curves["metric"])
    chosen = next((p for p in pairs if p[0] in logged and p[1] in logged), None)
    if chosen is None:
        return None
    estimate, truth, ylabel, est_label, true_label = chosen
    groups, head = _titles(design)
    styler = Styler(design)
    fig, axes = _panels(len(groups), 1, _legend_rows(styler, 3) + 1)
    drawn: list[Curve] = []
    for row, group in enumerate(groups):
        ax = axes[row, 0]
        for key, kw in ((estimate, {}), (truth, {"band": False, "linestyle": "--",
                                                 "markerfacecolor": "none", "label": "_true",
                                                 "alpha": 0.9})):
            drawn += _curves_panel(ax, select(curves[curves["metric"] == key], group), design,
                                   styler, **kw)
        _title(ax, "estimate (solid) vs truth (dashed)", group, head)
        _count_axis(ax, "environment steps")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    _suptitle(fig, head)
    kinds = [Line2D([], [], color="grey", linestyle="-", marker="o",
                    label=f"{est_label} (solid, filled)"),
             Line2D([], [], color="grey", linestyle="--", marker="o", markerfacecolor="none",
                    label=f"{true_label} (dashed, hollow)")]
    _report(fig, axes, "q_vs_true", drawn, kinds)
    return fig


def maxbias_left(curves: pd.DataFrame, design: Design) -> Figure | None:
    """Fraction of episodes that went left from A, against episode (binned), per τ."""
    return curves_figure(curves, design, ["maxbias/left"], name="maxbias_left", xlabel="episode",
                         ylabel="fraction of episodes going left", ylim=(-0.02, 1.02))


FIGURES = {
    "bias_vs_steps": bias_vs_steps,
    "return_vs_steps": return_vs_steps,
    "q_vs_true": q_vs_true,
}


@paper_style
def performance_profile(profile: pd.DataFrame, design: Design) -> Figure | None:
    """rliable's performance profile: per score metric a panel, per algorithm (config without
    env) the fraction of runs whose min-max-normalised score exceeds each threshold, each env
    weighing the same, with its stratified bootstrap band (`across_envs`)."""
    if profile.empty:
        return None
    keys = [k for k in design.keys if k in profile.columns]
    metrics = list(dict.fromkeys(profile["metric"]))
    styler = Styler(design)
    fig, axes = _panels(1, len(metrics), _legend_rows(styler, 3 if len(metrics) == 1 else 6))
    varying = [k for k in keys if k not in ("tau", "operator") and profile[k].nunique() > 1]
    for ax, metric in zip(axes.flat, metrics, strict=True):
        for algorithm, rows in _groups(_sort(profile[profile["metric"] == metric], keys), keys):
            style = styler.style(algorithm)
            if varying:
                style["label"] += ", " + ", ".join(f"{k}={algorithm[k]}" for k in varying)
            ax.plot(rows["threshold"], rows["fraction"], **style)
            ax.fill_between(rows["threshold"], rows["ci_low"], rows["ci_high"],
                            color=style["color"], alpha=0.18, linewidth=0)
        ax.set_title(f"{METRICS[metric].label} across envs" if metric in METRICS else metric)
        ax.set_xlabel("normalised score threshold t")
        ax.set_ylabel("fraction of runs with score > t")
        ax.grid(alpha=0.3)
    _across_caption(fig, axes, design, "performance_profile", "bands")
    return fig


def _across_caption(fig: Figure, axes: np.ndarray, design: Design, name: str, ci: str) -> None:
    """Legend and caption of a figure across envs (seeds per config and env, the envs, the
    normalisation and the stratified CI), and `check_figure`'s warning."""
    seeds = design.table.groupby(design.keys, dropna=False, sort=False).size().tolist()
    envs = ", ".join(map(str, sorted(design.table["env"].unique())))
    text = (f"{seeds_text(seeds).replace('per config', 'per config and env')} on {envs}; "
            f"scores min-max-normalised per env (score_bounds.csv); {ci}: 95% stratified "
            "percentile-bootstrap CI (each env's seeds resampled on their own)")
    _legend(fig, axes, text)
    check_figure(name, [], seeds)


@paper_style
def iqm_across_envs(table: pd.DataFrame, design: Design) -> Figure | None:
    """rliable's aggregate plot: per score metric a panel, per algorithm (a row) the IQM of its
    min-max-normalised scores over every env (point, in its τ's colour) with its stratified
    bootstrap CI (bar); `table` is `across_envs.csv`."""
    if table.empty:
        return None
    keys = [k for k in design.keys if k in table.columns]
    metrics = list(dict.fromkeys(table["metric"]))
    styler = Styler(design)
    algorithms = list(_groups(_sort(table[table["metric"] == metrics[0]], keys), keys))
    fig, axes = _panels(1, len(metrics), 2)
    fig.set_figheight(0.9 + 0.25 * len(algorithms) + 0.5)
    varying = [k for k in keys if k not in ("tau", "operator") and table[k].nunique() > 1]
    for ax, metric in zip(axes.flat, metrics, strict=True):
        labels = []
        rows = _sort(table[table["metric"] == metric], keys)
        for i, (algorithm, row) in enumerate(_groups(rows, keys)):
            style = styler.style(algorithm)
            interval = row[["iqm", "iqm_ci_low", "iqm_ci_high"]].set_axis(
                ["mean", "ci_low", "ci_high"], axis=1)
            ax.errorbar(row["iqm"], [i], xerr=ci_error(interval), color=style["color"],
                        marker="o", capsize=2, linestyle="none", label="_iqm")
            labels.append(", ".join([style["label"], *(f"{k}={algorithm[k]}" for k in varying)]))
        ax.set_yticks(range(len(labels)), labels)
        ax.invert_yaxis()
        ax.set_title(f"{METRICS[metric].label}: IQM across envs" if metric in METRICS else metric)
        ax.set_xlabel("IQM of min-max-normalised score")
        ax.grid(alpha=0.3, axis="x")
    _across_caption(fig, axes, design, "iqm_across_envs", "bars")
    return fig
