"""Sutton & Barto's Figure 6.5 from a `softq-analyze` output, with each operator's own optimum.

    python experiments/maxbias_figure.py results/maxbias [--png experiments/figures/maxbias.png]

Reads `DIR/curves.csv` (the `maxbias/left` rows: per config and bin of episodes, the mean fraction of
episodes that went left from A over runs and its 95% bootstrap CI) and writes

- `DIR/maxbias_left.csv`: one row per config and bin (label, tau, operator, double, episode, n, mean,
  ci_low, ci_high, own_optimum, reference), tidy;
- `DIR/maxbias_left.png` (and `--png`): the curves with CI bands, the 5% line of the optimal ε-greedy
  policy, per config the fraction its *own* exact fixed point would go left, and for the hard max
  and Double Q-learning the independent numpy reference of `maxbias_reference.py` (20,000 runs, so
  that its own Monte-Carlo error is small beside the CI band; thin dashed), which shares no code
  with softq_lab.

Own optimum: with Q_op the exact fixed point of the config's operator at its τ on the MaxBias MDP
(`diagnostics.exact.fixed_point`, mean rewards, γ = 1), an ε-greedy policy on Q_op goes left from A
with probability ε/2 + (1 − ε)·1[Q_op(A, left) > Q_op(A, right)] (ε/2 + (1 − ε)/2 on a tie). For the
hard max and Double Q-learning that is ε/2 = 5%. For log-sum-exp, V_soft(B) = −0.1 + τ·log 10 (the
ten arms at B are worth alike), which exceeds V_soft(right) = 0 for τ > 0.1/log 10 ≈ 0.043: its own
optimum goes left 95% of the time there, so a soft curve near 95% is the operator being right about
its own objective, not a maximization bias.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gymnasium as gym
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from maxbias_reference import left_fractions

from softq_lab.diagnostics import exact
from softq_lab.envs import maxbias

EPSILON = 0.1
LEFT, RIGHT = 0, 1
COLUMNS = ["label", "tau", "operator", "double", "episode", "n", "mean", "ci_low", "ci_high",
           "own_optimum", "reference"]
REFERENCE = {"hard max": False, "Double Q-learning": True}  # label -> double
REFERENCE_RUNS = 20_000


def own_optimum(operator: str, tau: float, n_b_actions: int = 10, epsilon: float = EPSILON) -> float:
    """P(left from A) of the ε-greedy policy on the exact fixed point of `operator` at τ."""
    mdp = exact.tabular_mdp(gym.make("MaxBias-v0", n_b_actions=n_b_actions))
    q = exact.fixed_point(mdp, maxbias.BOOK_GAMMA, tau, "hard" if tau == 0 else operator).q
    left, right = q[maxbias.STATE_A, LEFT], q[maxbias.STATE_A, RIGHT]
    greedy_left = 1.0 if left > right + 1e-12 else 0.5 if abs(left - right) <= 1e-12 else 0.0
    return epsilon / 2 + (1 - epsilon) * greedy_left


def label(row: pd.Series) -> str:
    """'hard max', 'Double Q-learning', or '<operator> τ=<tau>'."""
    if str(row.get("double", "none")) not in ("none", "False", "nan"):
        return "Double Q-learning" if row["tau"] == 0 else f"double {row['operator']} τ={row['tau']:g}"
    return "hard max" if row["tau"] == 0 else f"{row['operator']} τ={row['tau']:g}"


def tidy(curves: pd.DataFrame, reference_runs: int = REFERENCE_RUNS) -> pd.DataFrame:
    """The `maxbias/left` rows of curves.csv, one per config and episode bin, with own optimum."""
    rows = curves[curves["metric"] == "maxbias/left"].copy()
    if rows.empty:
        raise ValueError("curves.csv has no maxbias/left rows: were these MaxBias runs?")
    if "double" not in rows.columns:
        rows["double"] = "none"
    if "operator" not in rows.columns:
        rows["operator"] = "hard"
    rows["label"] = rows.apply(label, axis=1)
    optima = {(op, t): own_optimum(op, t) for op, t in
              rows[["operator", "tau"]].drop_duplicates().itertuples(index=False)}
    rows["own_optimum"] = [optima[(op, t)] for op, t in zip(rows["operator"], rows["tau"],
                                                            strict=True)]
    rows = rows.rename(columns={"x": "episode"})
    rows["reference"] = np.nan
    for name, double in REFERENCE.items():
        at = rows["label"] == name
        if at.any():
            rows.loc[at, "reference"] = reference(rows.loc[at, "episode"].to_numpy(), double,
                                                  reference_runs)
    return rows[COLUMNS].sort_values(["label", "episode"], kind="stable").reset_index(drop=True)


def reference(centres: np.ndarray, double: bool, runs: int = REFERENCE_RUNS) -> np.ndarray:
    """The numpy reference's mean left fraction in the bins of curves.csv (width = the centres'
    spacing, bin k covering episodes [k·width, (k + 1)·width), as `analysis.aggregate.binned`)."""
    per_episode = left_fractions(runs, double=double).mean(axis=0)
    width = round(float(centres[1] - centres[0])) if len(centres) > 1 else len(per_episode)
    starts = (np.asarray(centres) + 0.5 - width / 2).round().astype(int)
    return np.array([per_episode[s:s + width].mean() for s in starts])


def figure(table: pd.DataFrame) -> plt.Figure:
    """One panel of every config's curve and CI band, the 5% optimum and each own optimum."""
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=100)
    order = sorted(table["label"].unique(), key=lambda s: (s != "hard max",
                                                           s != "Double Q-learning", s))
    colours = plt.get_cmap("tab10")
    for i, name in enumerate(order):
        rows = table[table["label"] == name]
        colour = "black" if name == "hard max" else colours(i % 10)
        n = int(rows["n"].min())
        ax.plot(rows["episode"], 100 * rows["mean"], color=colour, lw=1.6, label=f"{name} (n={n})")
        ax.fill_between(rows["episode"], 100 * rows["ci_low"], 100 * rows["ci_high"],
                        color=colour, alpha=0.2, lw=0)
        if rows["reference"].notna().any():
            ax.plot(rows["episode"], 100 * rows["reference"], color=colour, lw=0.8, ls="--",
                    label=f"{name}, numpy reference")
        optimum = float(rows["own_optimum"].iloc[0])
        if abs(optimum - EPSILON / 2) > 1e-9:
            ax.axhline(100 * optimum, color=colour, ls=":", lw=1)
    ax.axhline(100 * EPSILON / 2, color="grey", ls="--", lw=1, label="optimal (ε/2 = 5%)")
    ax.set(xlabel="episode", ylabel="% left actions from A", ylim=(0, 100),
           title="Maximization bias (Sutton & Barto Fig. 6.5); dotted: each operator's own optimum")
    ax.legend(fontsize=7, ncol=2, loc="upper right")
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a softq-analyze output directory")
    parser.add_argument("--png", type=Path, action="append", default=[],
                        help="also write the figure here")
    parser.add_argument("--reference-runs", type=int, default=REFERENCE_RUNS,
                        help=f"runs of the numpy reference (default {REFERENCE_RUNS})")
    args = parser.parse_args(argv)
    curves_csv = args.results / "curves.csv"
    if not curves_csv.is_file():
        print(f"maxbias_figure: error: {curves_csv}: no such file (run softq-analyze first)",
              file=sys.stderr)
        return 2
    try:
        table = tidy(pd.read_csv(curves_csv), args.reference_runs)
    except ValueError as exc:
        print(f"maxbias_figure: error: {exc}", file=sys.stderr)
        return 2
    table.to_csv(args.results / "maxbias_left.csv", index=False)
    fig = figure(table)
    for path in [args.results / "maxbias_left.png", *args.png]:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    summary = table.groupby("label").agg(early=("mean", lambda m: 100 * m.iloc[:4].max()),
                                         late=("mean", lambda m: 100 * m.iloc[-5:].mean()),
                                         own=("own_optimum", lambda o: 100 * o.iloc[0]))
    compared = table[table["reference"].notna()]
    outside = (compared["reference"] < compared["ci_low"]) | (compared["reference"] > compared["ci_high"])
    print(f"numpy reference outside the 95% CI in {int(outside.sum())} of {len(compared)} bins "
          f"(~{0.05 * len(compared):.0f} expected by chance)")
    print(summary.round(1).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
