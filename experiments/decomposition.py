"""The bias decomposition (and, on tabular envs, the exact errors) from a `softq-analyze` output.

    python experiments/decomposition.py results/tabular_exact-20 --truth exact
    python experiments/decomposition.py results/cartpole_overestimation-10 --truth monte_carlo

Reads `DIR/runs.csv` (one row per run: its config and the last logged values, from the run's final
evaluation) and splits each finished run's over-estimation against the hard truth into

    total      = mean(q̂ − T_hard)          the learner against the hard max's truth
    estimation = mean(q̂ − T_op)            the learner against its own operator's truth
    offset     = total − estimation = mean(T_op − T_hard)     by design, not by error

`--truth exact` (tabular envs): T_hard = Q* (hard value iteration), T_op = the exact fixed point of the
run's own target (operator, τ, n-step, entropy bonus), over the valid pairs of the states in play
(`exact/bias_qstar`, `exact/bias_fixed_point`); for log-sum-exp at n = 1 the offset lies in
[0, γτ·log|A|/(1 − γ)] (`offset_bound`). `--truth monte_carlo` (any env): T_hard = the discounted
return G that the target policy actually collects from the evaluation episodes' visited pairs,
T_op = the soft return G^τ (G plus the policy's discounted entropy bonuses)
(`overestimation/bias_hard`, `overestimation/bias_soft`).

Writes, per config (env, n-step, entropy bonus, double, operator, τ) over seeds, the mean and 95% t-interval
half-width: `DIR/decomposition.csv` (tidy), `DIR/decomposition.png` (per panel, stacked bars of
estimation bias and offset across τ with the total and its CI as a marker: whether a soft backup
removed over-estimation or only moved it) and, with `--truth exact`, `DIR/tabular_errors.png` (mean
|q̂ − Q*| and mean |q̂ − Q*_op| against τ).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scipy.stats

KEYS = ["env", "n_step", "entropy_bonus", "double", "operator", "tau"]
N_ACTIONS = {"FrozenLake-v1": 4, "CliffWalking-v1": 4}


class Truth(NamedTuple):
    total: str  # runs.csv column: mean(q̂ − T_hard)
    estimation: str  # runs.csv column: mean(q̂ − T_op)
    errors: dict[str, str]  # extra per-run columns summarised alike: name -> runs.csv column
    hard: str  # labels of the two truths, for the figure
    own: str


TRUTHS = {
    "exact": Truth("exact/bias_qstar", "exact/bias_fixed_point",
                   {"mae_qstar": "exact/mae_qstar", "mae_fixed_point": "exact/mae_fixed_point"},
                   "Q*", "Q*_op"),
    "monte_carlo": Truth("overestimation/bias_hard", "overestimation/bias_soft",
                         {"final_return": "final_return"}, "G", "G^τ"),
}


def mean_ci(x: pd.Series) -> tuple[float, float]:
    """(mean, half-width of the 95% t-interval) over seeds; NaN half-width with one seed."""
    x = x.dropna().to_numpy(float)
    if len(x) < 2:
        return (float(x.mean()) if len(x) else np.nan), np.nan
    return float(x.mean()), float(scipy.stats.sem(x) * scipy.stats.t.ppf(0.975, len(x) - 1))


def table(runs: pd.DataFrame, truth: Truth) -> pd.DataFrame:
    """One row per config over its finished runs (module docstring)."""
    needed = {truth.total, truth.estimation, *truth.errors.values()}
    runs = runs[runs["status"] == "finished"].copy()
    missing = sorted(needed - set(runs.columns))
    if missing or runs.empty:
        raise ValueError(f"runs.csv has no finished runs logging {missing or sorted(needed)}")
    runs["offset"] = runs[truth.total] - runs[truth.estimation]
    if "operator" in runs.columns:  # every operator is the hard max at τ = 0: one config
        runs.loc[runs["tau"] == 0, "operator"] = "hard"
    keys = [k for k in KEYS if k in runs.columns]
    columns = {"total": truth.total, "estimation": truth.estimation, "offset": "offset",
               **truth.errors}
    rows = []
    for key, sub in runs.groupby(keys, sort=True, dropna=False):
        row = {**dict(zip(keys, key, strict=True)), "gamma": float(sub["gamma"].iloc[0]),
               "n": len(sub)}
        for name, column in columns.items():
            row[name], row[f"{name}_ci"] = mean_ci(sub[column])
        n_actions = N_ACTIONS.get(str(row["env"]), np.nan)
        row["offset_bound"] = row["gamma"] * row["tau"] * np.log(n_actions) / (1 - row["gamma"])
        rows.append(row)
    return pd.DataFrame(rows)


def _setting(row: pd.Series) -> str:
    parts = [f"n = {row['n_step']}"]
    if str(row.get("entropy_bonus")) == "True":
        parts.append("entropy bonus")
    if str(row.get("double", "none")) not in ("none", "nan"):
        parts.append(f"double={row['double']}")
    if str(row.get("operator", "soft")) not in ("soft", "hard", "nan"):
        parts.append(str(row["operator"]))
    return ", ".join(parts)


def _panels(t: pd.DataFrame) -> list[tuple[tuple, pd.DataFrame]]:
    return list(t.assign(setting=t.apply(_setting, axis=1)).groupby(["env", "setting"], sort=True))


def decomposition_figure(t: pd.DataFrame, truth: Truth) -> plt.Figure:
    """Stacked estimation bias + offset across τ, the total with its CI; a panel per env/setting."""
    panels = _panels(t)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels) + 0.5, 3.8), dpi=100,
                             squeeze=False)
    for ax, ((env, setting), rows) in zip(axes[0], panels, strict=True):
        x = np.arange(len(rows))
        est, off = rows["estimation"].to_numpy(), rows["offset"].to_numpy()
        ax.bar(x, est, color="C0", label=f"estimation: q̂ − {truth.own}")
        ax.bar(x, off, bottom=np.where(np.sign(off) == np.sign(est), est, 0), color="C1",
               label=f"offset: {truth.own} − {truth.hard}")
        ax.errorbar(x, rows["total"], yerr=rows["total_ci"], fmt="k_", ms=14, capsize=3,
                    label=f"total: q̂ − {truth.hard} (95% CI)")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(x, [f"{tau:g}" for tau in rows["tau"]])
        ax.set_title(f"{env}\n{setting} ({int(rows['n'].min())} seeds)", fontsize=9)
        ax.set_xlabel("τ")
    axes[0][0].set_ylabel("mean bias")
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    return fig


def errors_figure(t: pd.DataFrame) -> plt.Figure:
    """Exact errors against τ: a panel per env, a colour per setting, solid vs Q*, dashed vs Q*_op."""
    envs = list(dict.fromkeys(t["env"]))
    fig, axes = plt.subplots(1, len(envs), figsize=(5 * len(envs), 3.8), dpi=100, squeeze=False)
    for ax, env in zip(axes[0], envs, strict=True):
        sub = t[t["env"] == env]
        for i, (setting, rows) in enumerate(sub.groupby(sub.apply(_setting, axis=1), sort=True)):
            for name, style, truth in (("mae_qstar", "-", "Q*"), ("mae_fixed_point", "--", "Q*_op")):
                ax.errorbar(np.arange(len(rows)) + 0.05 * i, rows[name], yerr=rows[f"{name}_ci"],
                            ls=style, marker="o", ms=3, color=f"C{i}", capsize=2,
                            label=f"{setting}: vs {truth}")
            ax.set_xticks(np.arange(len(rows)), [f"{tau:g}" for tau in rows["tau"]])
        ax.set(title=f"{env} ({int(sub['n'].min())} seeds)", xlabel="τ", yscale="log",
               ylabel="mean |q̂ − truth| over (s, a) in play")
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a softq-analyze output directory")
    parser.add_argument("--truth", choices=sorted(TRUTHS), required=True)
    parser.add_argument("--copy-to", type=Path, help="also copy the PNGs into this directory")
    args = parser.parse_args(argv)
    runs_csv = args.results / "runs.csv"
    if not runs_csv.is_file():
        parser.exit(2, f"decomposition: error: {runs_csv}: no such file (run softq-analyze)\n")
    truth = TRUTHS[args.truth]
    try:
        t = table(pd.read_csv(runs_csv), truth)
    except ValueError as exc:
        parser.exit(2, f"decomposition: error: {exc}\n")
    t.to_csv(args.results / "decomposition.csv", index=False)
    figures = {"decomposition": decomposition_figure(t, truth)}
    if args.truth == "exact":
        figures["tabular_errors"] = errors_figure(t)
    for name, fig in figures.items():
        fig.savefig(args.results / f"{name}.png")
        if args.copy_to:
            args.copy_to.mkdir(parents=True, exist_ok=True)
            shutil.copy(args.results / f"{name}.png", args.copy_to / f"{name}_{args.truth}.png")
    shown = [c for c in t.columns if not c.endswith("_ci") and c != "gamma"]
    print(t[shown].round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
