"""Figures (matplotlib, Agg canvas: no display needed), each saved as PNG and PDF.

One panel per τ-comparison group (configs equal except in τ and operator); within a panel, one
colour per τ (black: the hard max, τ = 0) and one line style per operator. Bands are the 95%
bootstrap CIs of the mean over seeds (see `aggregate.curve_stats`).

- `bias_vs_steps`: over-estimation bias (hard and soft return) against steps.
- `return_vs_steps`: evaluation return against steps.
- `final_bias_vs_tau`: final bias against τ (log x); the hard max is a black line with its band.
- `q_vs_true`: estimated value q̂ at the start states (solid) and the true discounted return of the
  greedy policy from them (dashed) over training, as in van Hasselt et al. (2016); where only exact
  values are logged, mean q̂ against mean Q* over all state-action pairs.
- `maxbias_left`: fraction of episodes going left from A against episode, for MaxBias.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import EngFormatter

from softq_lab.analysis.aggregate import Design, _groups, _sort, select

PANEL = (4.4, 3.2)
LINESTYLES = ("-", "--", ":", "-.")
HARD_COLOR = "black"
LABELS = {
    "overestimation/bias_hard": "bias vs hard return",
    "overestimation/bias_soft": "bias vs soft return",
    "eval/return_mean": "evaluation return",
    "train/episode_return": "training episode return",
    "final_bias_hard": "final bias vs hard return",
    "final_bias_soft": "final bias vs soft return",
}


def save(fig: Figure, out_dir: Path, name: str) -> list[Path]:
    """Write `name.png` (150 dpi) and `name.pdf` into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    for path in paths:
        fig.savefig(path, dpi=150)
    return paths


class Styler:
    """Colour per τ, line style per operator, consistent across every figure of one design."""

    def __init__(self, design: Design):
        table = design.table
        taus = sorted({float(t) for t in table.get("tau", pd.Series(dtype=float)).dropna()
                       if t > 0})
        cmap = matplotlib.colormaps["viridis"]
        self.colors = {t: cmap(0.9 * i / max(1, len(taus) - 1)) for i, t in enumerate(taus)}
        operators = [] if "operator" not in table.columns else [
            o for o in dict.fromkeys(table["operator"].astype(str)) if o != "hard"]
        self.styles = {o: LINESTYLES[i % len(LINESTYLES)] for i, o in enumerate(operators)}

    def operator_color(self, operator: object) -> str:
        """A colour per operator (for plots where x is τ)."""
        names = list(self.styles)
        return f"C{names.index(operator) % 10}" if operator in names else "C0"

    def style(self, setting: dict) -> dict:
        """Line keyword arguments and label of one (operator, τ)."""
        tau = float(setting.get("tau", math.nan))
        if tau == 0:
            return {"color": HARD_COLOR, "linestyle": "-", "label": "hard max (τ = 0)"}
        operator = str(setting.get("operator", ""))
        label = f"{operator} τ = {tau:g}" if operator else f"τ = {tau:g}"
        return {"color": self.colors.get(tau, "grey"),
                "linestyle": self.styles.get(operator, "-"), "label": label}


def _panels(n_rows: int, n_cols: int) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(PANEL[0] * n_cols + 1.8, PANEL[1] * n_rows + 0.4), layout="constrained")
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


def _title(what: str, group: dict, constant_title: str) -> str:
    """`what`, then (wrapped) the group keys that are not the same for every panel."""
    shown = [f"{k}={v}" for k, v in group.items() if f"{k}={v}" not in constant_title.split(", ")]
    return "\n".join([what, *textwrap.wrap(", ".join(shown), width=int(PANEL[0] * 11))])


def _suptitle(fig: Figure, text: str) -> None:
    if text:
        width = int(fig.get_figwidth() * 9)
        fig.suptitle("\n".join(textwrap.wrap(text, width=width)), fontsize=10)


def _legend(fig: Figure, axes: np.ndarray, extra: Sequence[Line2D] = ()) -> None:
    handles: dict[str, Line2D] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if not label.startswith("_"):
                handles.setdefault(label, handle)
    for handle in extra:
        handles.setdefault(handle.get_label(), handle)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside right center", fontsize=9)


def _curves_panel(ax: Axes, stats: pd.DataFrame, design: Design, styler: Styler,
                  band: bool = True, **line_kw) -> bool:
    """Draw one line (and band) per (operator, τ) of `stats`; False if nothing was drawn."""
    tau_keys = [k for k in design.keys if k not in design.group_keys]
    drawn = False
    for setting, rows in _groups(_sort(stats, tau_keys), tau_keys):
        rows = rows.sort_values("x")
        style = {**styler.style(setting), **line_kw}
        ax.plot(rows["x"], rows["mean"], linewidth=1.6, **style)
        if band:
            ax.fill_between(rows["x"], rows["ci_low"], rows["ci_high"], color=style["color"],
                            alpha=0.18, linewidth=0)
        drawn = True
    return drawn


def curves_figure(curves: pd.DataFrame, design: Design, keys: Sequence[str], *,
                  xlabel: str = "environment steps", ylabel: str | None = None,
                  zero_line: bool = False,
                  ylim: tuple[float, float] | None = None) -> Figure | None:
    """Rows: groups; columns: the logged `keys`; lines: mean over seeds per (operator, τ)."""
    keys = [k for k in keys if (curves["metric"] == k).any()]
    if not keys:
        return None
    groups, head = _titles(design)
    fig, axes = _panels(len(groups), len(keys))
    styler = Styler(design)
    for row, group in enumerate(groups):
        for col, key in enumerate(keys):
            ax = axes[row, col]
            stats = select(curves[curves["metric"] == key], group)
            _curves_panel(ax, stats, design, styler)
            if zero_line:
                ax.axhline(0, color="grey", linewidth=0.8, linestyle=":")
            if ylim:
                ax.set_ylim(*ylim)
            ax.set_title(_title(LABELS.get(key, key), group, head), fontsize=9)
            _count_axis(ax, xlabel)
            ax.set_ylabel(ylabel or LABELS.get(key, key))
            ax.grid(alpha=0.3)
    _suptitle(fig, head)
    _legend(fig, axes)
    return fig


def bias_vs_steps(curves: pd.DataFrame, design: Design) -> Figure | None:
    """Over-estimation bias (mean q̂ − Monte-Carlo return) against steps, per τ, with CI bands."""
    return curves_figure(curves, design, ["overestimation/bias_hard", "overestimation/bias_soft"],
                         ylabel="over-estimation bias", zero_line=True)


def return_vs_steps(curves: pd.DataFrame, design: Design) -> Figure | None:
    """Evaluation return (else training episode return) against steps, per τ, with CI bands."""
    key = "eval/return_mean" if (curves["metric"] == "eval/return_mean").any() \
        else "train/episode_return"
    return curves_figure(curves, design, [key], ylabel="return")


def final_bias_vs_tau(
    summary: pd.DataFrame, design: Design,
    metrics: Sequence[str] = ("final_bias_hard", "final_bias_soft"),
) -> Figure | None:
    """Final bias against τ (log x) per operator, CI error bars; the hard max as a horizontal line
    with its CI band."""
    summary = summary[summary["n"] > 0]  # a config whose runs all diverged has no mean
    metrics = [m for m in metrics if (summary["metric"] == m).any()]
    if not metrics or "tau" not in summary.columns:
        return None
    groups, head = _titles(design)
    fig, axes = _panels(len(groups), len(metrics))
    styler = Styler(design)
    ops = [k for k in design.keys if k == "operator"]
    for row, group in enumerate(groups):
        for col, metric in enumerate(metrics):
            ax = axes[row, col]
            rows = select(summary[summary["metric"] == metric], group)
            hard = rows[rows["tau"] == 0]
            for _, h in hard.iterrows():
                ax.axhline(h["mean"], color=HARD_COLOR, linewidth=1.6, label="hard max (τ = 0)")
                if np.isfinite(h["ci_low"]):
                    ax.axhspan(h["ci_low"], h["ci_high"], color=HARD_COLOR, alpha=0.12,
                               linewidth=0)
            for setting, sub in _groups(rows[rows["tau"] > 0], ops):
                sub = sub.sort_values("tau")
                style = styler.style({**setting, "tau": 1.0})
                label = f"{setting['operator']} (mean, 95% CI)" if ops else "τ > 0 (mean, 95% CI)"
                yerr = np.vstack([sub["mean"] - sub["ci_low"], sub["ci_high"] - sub["mean"]])
                ax.errorbar(sub["tau"], sub["mean"], yerr=np.nan_to_num(yerr),
                            color=styler.operator_color(setting.get("operator")),
                            linestyle=style["linestyle"], marker="o", capsize=3, label=label)
            ax.set_xscale("log")
            ax.axhline(0, color="grey", linewidth=0.8, linestyle=":")
            ax.set_title(_title(LABELS.get(metric, metric), group, head), fontsize=9)
            ax.set_xlabel("τ (log scale)")
            ax.set_ylabel("final over-estimation bias")
            ax.grid(alpha=0.3, which="both")
    _suptitle(fig, head)
    _legend(fig, axes)
    return fig


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
    fig, axes = _panels(len(groups), 1)
    styler = Styler(design)
    for row, group in enumerate(groups):
        ax = axes[row, 0]
        _curves_panel(ax, select(curves[curves["metric"] == estimate], group), design, styler)
        _curves_panel(ax, select(curves[curves["metric"] == truth], group), design, styler,
                      band=False, linestyle="--", label="_true", alpha=0.9)
        ax.set_title(_title("estimate (solid) vs truth (dashed)", group, head), fontsize=9)
        _count_axis(ax, "environment steps")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    _suptitle(fig, head)
    kinds = [Line2D([], [], color="grey", linestyle="-", label=f"{est_label} (solid)"),
             Line2D([], [], color="grey", linestyle="--", label=f"{true_label} (dashed)")]
    _legend(fig, axes, kinds)
    return fig


def maxbias_left(curves: pd.DataFrame, design: Design) -> Figure | None:
    """Fraction of episodes that went left from A, against episode (binned), per τ."""
    return curves_figure(curves, design, ["maxbias/left"], xlabel="episode",
                         ylabel="fraction of episodes going left", ylim=(-0.02, 1.02))


FIGURES = {
    "bias_vs_steps": bias_vs_steps,
    "return_vs_steps": return_vs_steps,
    "q_vs_true": q_vs_true,
}
