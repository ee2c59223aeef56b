"""`softq-analyze RUNS... --out DIR`: load runs, aggregate over seeds, write tables and figures.

Writes into DIR: `runs.csv` (one row per run: status, config, per-run metrics, last logged values),
`summary.csv` (per config and metric over seeds), `vs_hard_max.csv` / `vs_hard_max.md` (each τ
against τ = 0), `curves.csv` (curves on a common step grid, mean and CI per config) and
`figures/*.png|pdf`. Everything is computed first and written to a temporary directory that is moved
into DIR at the end, so an error leaves DIR untouched. Errors are one line on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pandas as pd
from matplotlib.figure import Figure

from softq_lab.analysis import across_envs, aggregate, plots
from softq_lab.analysis.load import (
    AnalysisError,
    AnalysisWarning,
    RunSet,
    combine,
    load_runs,
    load_wandb,
)

PROG = "softq-analyze"
PARTS = ("tables", "vs_hard_max", "figures")
#: Logged keys resampled onto the step grid for curves.csv and the figures (those logged).
CURVE_KEYS = (
    "eval/return_mean", "overestimation/bias_hard", "overestimation/bias_soft",
    "overestimation/q_start", "overestimation/return_start_hard", "exact/q_mean",
    "exact/qstar_mean",
)
#: (metric, x) pairs aggregated in bins of x rather than on the step grid.
EPISODE_CURVES = (("maxbias/left", "train/episode"),)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line on stderr, exit code 2 (argparse's default also prints the usage)."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser(prog: str = PROG, description: str | None = None) -> argparse.ArgumentParser:
    """The command line shared by `softq-analyze` and the scripts in analysis/."""
    p = _Parser(prog=prog, description=description or __doc__.splitlines()[0])
    p.add_argument("runs", nargs="*", metavar="RUNS",
                   help="run directories or directories holding them (Hydra multirun, outputs/)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    p.add_argument("--wandb", action="append", default=[], metavar="ENTITY/PROJECT",
                   help="also load every run of this wandb project (needs network and login)")
    p.add_argument("--metric", action="append", default=[], metavar="NAME",
                   help=f"report only these metrics (default: those logged; known: "
                        f"{', '.join(aggregate.METRICS)})")
    p.add_argument("--curve", action="append", default=[], metavar="KEY",
                   help="also plot this logged key (e.g. learner/q_mean) against steps")
    p.add_argument("--ignore", action="append", default=[], metavar="PATTERN",
                   help="config keys (shell patterns) that do not distinguish configs, in addition"
                        f" to: {' '.join(aggregate.DEFAULT_IGNORE)}")
    p.add_argument("--include-partial", action="store_true",
                   help="also use killed, preempted and failed runs in the statistics (diverged "
                        "runs are never averaged)")
    p.add_argument("--grid-points", type=int, default=101, metavar="N",
                   help="points of the common step grid for curves (default 101)")
    p.add_argument("--n-resamples", type=int, default=aggregate.N_RESAMPLES, metavar="N",
                   help=f"bootstrap resamples (default {aggregate.N_RESAMPLES})")
    p.add_argument("--seed", type=int, default=aggregate.SEED, help="bootstrap seed (default 0)")
    p.add_argument("--score-bounds", action="append", default=[], metavar="ENV=LOW:HIGH",
                   help="normalise ENV's returns across envs as (x - LOW) / (HIGH - LOW), e.g. a "
                        "random policy's and the maximum return (default: the min and max over "
                        "the runs on ENV)")
    p.add_argument("--no-cache", action="store_true", help="do not use the parquet cache")
    p.add_argument("--cache-dir", type=Path, metavar="DIR",
                   help="parquet cache (default $SOFTQ_LAB_CACHE or ~/.cache/softq-lab/metrics)")
    p.add_argument("--no-figures", action="store_true", help="tables only")
    return p


@dataclass
class Results:
    """Everything an analysis writes, computed in memory."""

    design: aggregate.Design
    runs: pd.DataFrame
    summary: pd.DataFrame | None = None
    vs_hard_max: pd.DataFrame | None = None
    vs_hard_max_md: str | None = None
    curves: pd.DataFrame | None = None
    across_envs: pd.DataFrame | None = None
    performance_profile: pd.DataFrame | None = None
    score_bounds: pd.DataFrame | None = None
    figures: dict[str, Figure] = field(default_factory=dict)


def load(args: argparse.Namespace) -> RunSet:
    """Local runs and wandb projects named on the command line, as one `RunSet`."""
    if args.grid_points < 2 or args.n_resamples < 1:
        raise AnalysisError("--grid-points must be at least 2 and --n-resamples at least 1")
    if not args.runs and not args.wandb:
        raise AnalysisError("no runs given: name run directories or --wandb ENTITY/PROJECT")
    across_envs.parse_bounds(args.score_bounds)  # bad bounds fail before anything is loaded
    sets = []
    if args.runs:
        sets.append(load_runs(args.runs, cache=not args.no_cache, cache_dir=args.cache_dir))
    sets.extend(load_wandb(project) for project in args.wandb)
    return sets[0] if len(sets) == 1 else combine(*sets)


def curve_frames(runset: RunSet, design: aggregate.Design, keys: Sequence[str], *,
                 grid_points: int, n_resamples: int, seed: int) -> pd.DataFrame:
    """Curve statistics of each logged key on its common step grid (included runs only); NaN /
    ±inf values are left out (`aggregate.resample`), one warning per key."""
    metrics = runset.metrics[runset.metrics["run_id"].isin(design.table["run_id"])]
    nonfinite = runset.nonfinite[runset.nonfinite["run_id"].isin(design.table["run_id"])]
    frames = []
    for key in keys:
        if key not in metrics.columns or not metrics[key].notna().any():
            continue
        aggregate.report_curve_gaps(nonfinite, key)
        grid = aggregate.step_grid(metrics, key, grid_points)
        curves = aggregate.resample(metrics, key, grid, nonfinite)
        frames.append(aggregate.curve_stats(curves, design, key, n_resamples=n_resamples,
                                            seed=seed))
    for key, x in EPISODE_CURVES:
        if key in metrics.columns and x in metrics.columns and metrics[key].notna().any():
            aggregate.report_curve_gaps(nonfinite, key)
            curves = aggregate.binned(metrics, key, x)
            stats = aggregate.curve_stats(curves, design, key, n_resamples=n_resamples, seed=seed)
            frames.append(stats.assign(x_name=x))
    if not frames:
        return pd.DataFrame(columns=[*design.keys, "metric", "x", "n", "mean", "ci_low",
                                     "ci_high", "x_name"])
    out = pd.concat(frames, ignore_index=True)
    out["x_name"] = out.get("x_name", pd.Series(index=out.index, dtype=object)).fillna("step")
    return out


def analyze(runset: RunSet, args: argparse.Namespace, parts: Sequence[str] = PARTS) -> Results:
    """Compute every requested output in memory; raises `AnalysisError` for unusable input."""
    metrics = aggregate.resolve_metrics(runset, args.metric)
    for key in args.curve:
        if not runset.logged(key):
            raise AnalysisError(f"--curve {key}: no run logged {key}")
    ignore = (*aggregate.DEFAULT_IGNORE, *args.ignore)
    design = aggregate.prepare(runset, metrics, ignore=ignore,
                               include_partial=args.include_partial)
    stats = {"n_resamples": args.n_resamples, "seed": args.seed}
    included = runset.runs["run_id"].isin(design.table["run_id"]).rename("included")
    values = design.run_values.reset_index(drop=True)
    last = [c for c in runset.runs.columns if "/" in c]
    base = runset.runs.drop(columns=last)
    results = Results(design, pd.concat([base, included, values, runset.runs[last]], axis=1))
    results.summary = aggregate.summarize(design, **stats)
    if "tables" in parts or "figures" in parts:
        results.across_envs, results.performance_profile, results.score_bounds = \
            across_envs.across_envs(design, across_envs.parse_bounds(args.score_bounds), **stats)
    if "vs_hard_max" in parts:
        results.vs_hard_max = aggregate.vs_hard_max(design, **stats)
        results.vs_hard_max_md = aggregate.vs_hard_max_markdown(
            results.vs_hard_max, design, n_resamples=args.n_resamples)
    if "tables" in parts or "figures" in parts:
        keys = list(dict.fromkeys([*CURVE_KEYS, *args.curve]))
        if not runset.logged("eval/return_mean"):
            keys.insert(0, "train/episode_return")
        results.curves = curve_frames(runset, design, keys, grid_points=args.grid_points, **stats)
    if "figures" in parts and not args.no_figures:
        results.figures = _figures(results, args.curve)
    return results


def _figures(results: Results, extra: Sequence[str]) -> dict[str, Figure]:
    curves, design = results.curves, results.design
    steps = curves[curves["x_name"] == "step"]
    episodes = curves[curves["x_name"] != "step"]
    figures = {name: make(steps, design) for name, make in plots.FIGURES.items()}
    figures["final_bias_vs_tau"] = plots.final_bias_vs_tau(results.summary, design)
    if len(episodes):
        figures["maxbias_left"] = plots.maxbias_left(episodes, design)
    if results.performance_profile is not None and len(results.performance_profile):
        figures["performance_profile"] = plots.performance_profile(
            results.performance_profile, design)
        figures["iqm_across_envs"] = plots.iqm_across_envs(results.across_envs, design)
    for key in extra:
        name = f"curve_{key.replace('/', '_')}"
        figures[name] = plots.curves_figure(steps, design, [key], name=name)
    return {name: fig for name, fig in figures.items() if fig is not None}


def write(results: Results, out: Path, parts: Sequence[str] = PARTS) -> list[Path]:
    """Write the results into a temporary directory next to `out`, then move them into `out`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".softq-analyze-", dir=out.parent))
    try:
        if "tables" in parts:
            results.runs.to_csv(tmp / "runs.csv", index=False)
            results.summary.to_csv(tmp / "summary.csv", index=False)
            results.curves.to_csv(tmp / "curves.csv", index=False)
            if results.across_envs is not None and len(results.across_envs):
                results.across_envs.to_csv(tmp / "across_envs.csv", index=False)
                results.performance_profile.to_csv(tmp / "performance_profile.csv", index=False)
                results.score_bounds.to_csv(tmp / "score_bounds.csv", index=False)
        if results.vs_hard_max is not None:
            results.vs_hard_max.to_csv(tmp / "vs_hard_max.csv", index=False)
            (tmp / "vs_hard_max.md").write_text(results.vs_hard_max_md)
        for name, fig in results.figures.items():
            plots.save(fig, tmp / "figures", name)
        return _publish(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _publish(tmp: Path, out: Path) -> list[Path]:
    written = []
    for src in sorted(p for p in tmp.rglob("*") if p.is_file()):
        dst = out / src.relative_to(tmp)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
        written.append(dst)
    return written


def run(argv: Sequence[str] | None, parts: Sequence[str], prog: str = PROG,
        description: str | None = None) -> int:
    """Parse, analyse, write; print warnings and errors one per line on stderr. Exit code: 0, or
    2 for unusable input (nothing written)."""
    args = build_parser(prog, description).parse_args(argv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AnalysisWarning)
        try:
            if args.out.exists() and not args.out.is_dir():
                raise AnalysisError(f"--out {args.out}: exists and is not a directory")
            runset = load(args)
            results = analyze(runset, args, parts)
            written = write(results, args.out, parts)
        except AnalysisError as exc:
            _print_warnings(caught, prog)
            print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
            return 2
    _print_warnings(caught, prog)
    n_configs = len(results.summary.drop_duplicates(results.design.keys)) if len(
        results.summary) else 0
    n_diverged = len(results.design.diverged)
    diverged = f", {n_diverged} diverged" if n_diverged else ""
    print(f"{prog}: {len(runset.runs)} runs ({len(results.design.table)} used{diverged}, "
          f"{n_configs} configs) → {len(written)} files in {args.out}")
    return 0


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).splitlines())


def _print_warnings(caught: list[warnings.WarningMessage], prog: str) -> None:
    seen = set()
    for w in caught:
        if issubclass(w.category, AnalysisWarning):
            text = str(w.message)
            if text not in seen:
                seen.add(text)
                print(f"{prog}: warning: {text}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    caught.clear()


def main(argv: Sequence[str] | None = None) -> int:
    """`softq-analyze`: every table and figure."""
    return run(argv, PARTS)


def vs_hard_max_main(argv: Sequence[str] | None = None) -> int:
    """Only `vs_hard_max.csv` and `vs_hard_max.md`."""
    return run(argv, ("vs_hard_max",), prog="vs_hard_max.py",
               description="Each τ against the hard max (τ = 0): vs_hard_max.md and .csv.")


def plots_main(argv: Sequence[str] | None = None) -> int:
    """Only the figures."""
    return run(argv, ("figures",), prog="plots.py",
               description="Figures of a sweep (PNG and PDF) in DIR/figures.")


if __name__ == "__main__":
    sys.exit(main())
