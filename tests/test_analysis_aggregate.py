"""Aggregation: every number of summary.csv and vs_hard_max.csv recomputed from the raw files, and
the rules for grouping, baselines, partial runs and curve resampling."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import yaml

from softq_lab.analysis import aggregate, cli, plots
from softq_lab.analysis.load import AnalysisError, AnalysisWarning, load_runs

from fake_runs import (
    diverging_grid,
    make_config,
    make_records,
    replace_value,
    tau_grid,
    write_run,
    write_sweep,
)

N_RESAMPLES = 999


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOFTQ_LAB_CACHE", str(tmp_path / "cache"))


# ------------------------------------------------------------------ independent recomputation


def read_raw(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    """(config, records, status) straight from the files, without the analysis package."""
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    records = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    status_file = run_dir / "status.json"
    status = json.loads(status_file.read_text())["status"] if status_file.exists() else "killed"
    return config, sorted(records, key=lambda r: r["step"]), status


def series(records: list[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    pairs = [(r["step"], r[key]) for r in records if key in r]
    return np.array([p[0] for p in pairs], float), np.array([p[1] for p in pairs], float)


def raw_metrics(records: list[dict[str, Any]]) -> dict[str, float]:
    """The metric definitions of docs/analysis.md, with numpy."""
    out: dict[str, float] = {}
    steps, ret = series(records, "eval/return_mean")
    if len(ret):
        out["final_return"] = ret[-1]
        out["auc_return"] = np.trapezoid(ret, steps) / (steps[-1] - steps[0])
    else:
        last_step = max(r["step"] for r in records)
        s, ep = series(records, "train/episode_return")
        out["final_return"] = ep[s >= 0.9 * last_step].mean()
    for kind in ("hard", "soft"):
        _, bias = series(records, f"overestimation/bias_{kind}")
        if len(bias):
            out[f"final_bias_{kind}"] = bias[-1]
            out[f"avg_bias_{kind}"] = bias.mean()
    for name in ("qstar", "fixed_point"):
        _, mae = series(records, f"exact/mae_{name}")
        if len(mae):
            out[f"final_mae_{name}"] = mae[-1]
    return out


def expected_tables(run_dirs: list[Path]) -> tuple[dict, dict]:
    """summary and vs-hard-max rows keyed by (env, tau, operator, metric)."""
    values: dict[tuple, dict[int, dict[str, float]]] = defaultdict(dict)
    for run_dir in run_dirs:  # in load order: the first run of a (config, seed) wins
        config, records, status = read_raw(run_dir)
        if status != "finished":
            continue
        operator = "hard" if config["tau"] == 0 else config["operator"]
        key = (config["env"]["name"], float(config["tau"]), operator)
        values[key].setdefault(config["seed"], raw_metrics(records))
    rng = {"rng": np.random.default_rng}
    summary, versus = {}, {}
    for (env, tau, op), by_seed in values.items():
        for metric in aggregate.METRICS:
            x = np.array([by_seed[s][metric] for s in sorted(by_seed) if metric in by_seed[s]])
            if not len(x):
                continue
            ci = scipy.stats.bootstrap(
                (x,), np.mean, n_resamples=N_RESAMPLES, method="percentile", rng=rng["rng"](0)
            ).confidence_interval
            iqm_ci = scipy.stats.bootstrap(
                (x,), lambda a, axis: scipy.stats.trim_mean(a, 0.25, axis=axis),
                n_resamples=N_RESAMPLES, method="percentile", rng=rng["rng"](0)
            ).confidence_interval
            summary[(env, tau, op, metric)] = {
                "n": len(x),
                "mean": x.mean(),
                "iqm": scipy.stats.trim_mean(x, 0.25),
                "ci_low": ci.low,
                "ci_high": ci.high,
                "iqm_ci_low": iqm_ci.low,
                "iqm_ci_high": iqm_ci.high,
            }
            base = values.get((env, 0.0, "hard"))
            if tau == 0 or base is None:
                continue
            y = np.array([base[s][metric] for s in sorted(base) if metric in base[s]])
            if not len(y):
                continue
            ci = scipy.stats.bootstrap(
                (x, y),
                lambda a, b, axis: a.mean(axis) - b.mean(axis),
                n_resamples=N_RESAMPLES,
                method="percentile",
                paired=False,
                rng=rng["rng"](0),
            ).confidence_interval
            better = aggregate.METRICS[metric].better
            score = {
                "higher": lambda v: v,
                "lower": lambda v: -v,
                "closer to 0": lambda v: -abs(v),
            }[better]
            def p_better(xs, ys, score=score):
                wins = [1.0 if score(a) > score(b) else 0.5 if score(a) == score(b) else 0.0
                        for a in xs for b in ys]
                return sum(wins) / len(wins)

            p_ci = scipy.stats.bootstrap(
                (x, y), p_better, n_resamples=N_RESAMPLES, method="percentile", paired=False,
                vectorized=False, rng=rng["rng"](0)
            ).confidence_interval
            versus[(env, tau, op, metric)] = {
                "n": len(x),
                "n_hard": len(y),
                "mean": x.mean(),
                "mean_hard": y.mean(),
                "diff": x.mean() - y.mean(),
                "ci_low": ci.low,
                "ci_high": ci.high,
                "p_improvement": p_better(x, y),
                "p_improvement_ci_low": p_ci.low,
                "p_improvement_ci_high": p_ci.high,
            }
    return summary, versus


def check_table(csv: Path, expected: dict) -> None:
    table = pd.read_csv(csv)
    got = {(r["env"], float(r["tau"]), r["operator"], r["metric"]): r for _, r in table.iterrows()}
    assert set(got) == set(expected)
    for key, numbers in expected.items():
        for column, value in numbers.items():
            assert got[key][column] == pytest.approx(value, rel=1e-9, abs=1e-12), (key, column)


def test_every_number_in_summary_and_vs_hard_max_equals_a_recomputation_from_raw_files(
    tmp_path: Path,
) -> None:
    root = tmp_path / "runs"
    dirs = write_sweep(root / "a_cartpole", tau_grid([0, 0.1, 1.0], [0, 1, 2, 3]))  # IQM ≠ mean
    # MaxBias-like env with exact values, evaluated at a different cadence for one seed
    dirs += write_sweep(
        root / "b_exact",
        [
            *tau_grid([0, 0.5], [0, 1], env="chain"),
            *tau_grid([0, 0.5], [2], env="chain", eval_every=200),
        ],
        exact=True,
    )
    # no evaluations: final return falls back to training episodes, no AUC
    dirs += write_sweep(
        root / "c_noeval",
        tau_grid([0, 0.1], [0, 1, 2], env="acrobot"),
        eval_records=False,
        overestimation=False,
    )
    # τ = 0 again with another operator and a seed already present: same hard max, dropped
    dirs.append(write_run(root / "d_dupe", tau=0.0, operator="mellowmax", seed=1))
    dirs.append(write_run(root / "e_killed", status=None, truncate=True, tau=0.1, seed=7))
    dirs.append(write_run(root / "f_failed", status="failed", tau=0.1, seed=8))

    out = tmp_path / "out"
    code = cli.main(
        [str(root), "--out", str(out), "--no-figures", "--n-resamples", str(N_RESAMPLES)]
    )
    assert code == 0
    summary, versus = expected_tables(dirs)
    check_table(out / "summary.csv", summary)
    check_table(out / "vs_hard_max.csv", versus)

    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == len(dirs)
    assert runs.set_index("run_id").loc["runs/e_killed", "status"] == "killed"
    assert not runs.set_index("run_id").loc["runs/d_dupe", "included"]
    md = (out / "vs_hard_max.md").read_text()
    assert md.count("\n## ") == 3 and "| final_return | higher | 0.1 | soft |" in md


# ----------------------------------------------------------------------------- rules and helpers


def test_probability_of_improvement_counts_ties_half_and_compares_bias_by_magnitude() -> None:
    p = aggregate.probability_of_improvement
    assert p(np.array([1.0, 2.0]), np.array([1.0]), "higher") == 0.75
    assert p(np.array([-0.5]), np.array([1.0, 0.2]), "closer to 0") == 0.5
    assert p(np.array([0.1]), np.array([0.3]), "lower") == 1.0


def test_bootstrap_interval_needs_two_seeds() -> None:
    low, high = aggregate.bootstrap_ci((np.array([3.0]),))
    assert math.isnan(low) and math.isnan(high)
    low, high = aggregate.bootstrap_ci((np.array([3.0, 3.0, 3.0]),))
    assert low == high == 3.0


def test_curves_of_different_logging_cadence_align_on_a_common_step_grid(tmp_path: Path) -> None:
    line = [{"step": s, "eval/return_mean": 2.0 * s} for s in range(0, 1001, 100)]
    coarse = [{"step": s, "eval/return_mean": 2.0 * s + 10} for s in range(0, 1001, 250)]
    short = [{"step": s, "eval/return_mean": 2.0 * s + 20} for s in range(0, 501, 50)]
    for seed, records in enumerate([line, coarse, short]):
        write_run(tmp_path / "s" / str(seed), records=records, seed=seed, tau=0.0)
    runs = load_runs([tmp_path / "s"])
    design = aggregate.prepare(runs)
    grid = aggregate.step_grid(runs.metrics, "eval/return_mean", 11)
    assert grid.tolist() == list(range(0, 1001, 100))
    curves = aggregate.resample(runs.metrics, "eval/return_mean", grid)
    stats = aggregate.curve_stats(curves, design, "eval/return_mean", n_resamples=99)
    early = stats[stats["x"] <= 500]
    late = stats[stats["x"] > 500]
    assert (early["n"] == 3).all() and (late["n"] == 2).all()
    assert np.allclose(early["mean"], 2 * early["x"] + 10)
    assert np.allclose(late["mean"], 2 * late["x"] + 5)


def test_partial_runs_are_left_out_unless_asked_for(tmp_path: Path) -> None:
    write_sweep(tmp_path / "s", tau_grid([0], [0, 1]))
    write_run(tmp_path / "k", status=None, tau=0.0, seed=2)
    runs = load_runs([tmp_path])
    with pytest.warns(AnalysisWarning, match="1 of 3 runs did not finish"):
        design = aggregate.prepare(runs)
    assert len(design.table) == 2
    assert len(aggregate.prepare(runs, include_partial=True).table) == 3


def test_a_preempted_run_is_partial_like_a_killed_one(tmp_path: Path) -> None:
    write_sweep(tmp_path / "s", tau_grid([0], [0, 1]))
    write_run(tmp_path / "p", status="preempted", stop_at=600, tau=0.0, seed=2)
    runs = load_runs([tmp_path])
    with pytest.warns(AnalysisWarning, match=r"1 of 3 runs did not finish \(1 preempted\)"):
        assert len(aggregate.prepare(runs).table) == 2
    partial = aggregate.prepare(runs, include_partial=True)
    assert partial.table.set_index("seed").loc[2, "status"] == "preempted"
    assert aggregate.summarize(partial, n_resamples=99)["n_partial"].eq(1).all()


def test_a_group_without_hard_max_runs_is_warned_about_and_left_out(tmp_path: Path) -> None:
    write_sweep(tmp_path / "a", tau_grid([0, 0.1], [0, 1]))
    write_sweep(tmp_path / "b", tau_grid([0.1], [0, 1], env="acrobot"))
    design = aggregate.prepare(load_runs([tmp_path]))
    with pytest.warns(AnalysisWarning, match=r"no τ = 0 runs for env=acrobot"):
        table = aggregate.vs_hard_max(design, n_resamples=99)
    assert set(table["env"]) == {"cartpole"}


def test_runs_that_never_share_a_config_across_tau_are_warned_about_naming_what_differs(
    tmp_path: Path,
) -> None:
    write_sweep(tmp_path / "a", tau_grid([0], [0, 1], lr=1e-3))
    write_sweep(tmp_path / "b", tau_grid([0.1], [0, 1], lr=3e-4))
    design = aggregate.prepare(load_runs([tmp_path]))
    with pytest.warns(
        AnalysisWarning,
        match=r"differ in lr: τ = 0 has \{0.001\}, τ > 0 has \{0.0003\}",
    ):
        assert aggregate.vs_hard_max(design, n_resamples=99).empty


def test_a_run_set_without_the_hard_max_is_summarised_with_an_empty_comparison(
    tmp_path: Path,
) -> None:
    write_sweep(tmp_path / "s", tau_grid([0.1, 1.0], [0, 1]))
    design = aggregate.prepare(load_runs([tmp_path]))
    with pytest.warns(AnalysisWarning, match=r"no run has τ = 0"):
        assert aggregate.vs_hard_max(design, n_resamples=99).empty
    assert set(aggregate.summarize(design, n_resamples=99)["tau"]) == {0.1, 1.0}


def test_behaviour_tau_is_part_of_the_setting_not_of_the_group(tmp_path: Path) -> None:
    """The MaxBias preset runs the hard max with exploration.tau null and soft runs with 0: both act
    ε-greedy, so they compare without --ignore; null counts as the learner's own τ."""
    write_sweep(tmp_path / "a", tau_grid([0], [0, 1], extra={"exploration.tau": None}))
    write_sweep(tmp_path / "b", tau_grid([0.1], [0, 1], extra={"exploration.tau": 0.0}))
    write_sweep(tmp_path / "c", tau_grid([0.5], [0, 1], extra={"exploration.tau": None}))
    design = aggregate.prepare(load_runs([tmp_path]))
    assert aggregate.BEHAVIOUR_TAU not in design.group_keys
    table = aggregate.vs_hard_max(design, n_resamples=99)
    settings = set(zip(table["tau"], table[aggregate.BEHAVIOUR_TAU], strict=True))
    assert settings == {(0.1, 0.0), (0.5, 0.5)}
    assert (table["n_hard"] == 2).all()


def test_with_several_hard_max_behaviours_each_setting_meets_the_one_that_acts_alike(
    tmp_path: Path,
) -> None:
    write_sweep(tmp_path / "a", tau_grid([0], [0, 1], extra={"exploration.tau": 0.0}))
    write_sweep(tmp_path / "b", tau_grid([0], [2, 3, 4], extra={"exploration.tau": 0.5}))
    write_sweep(tmp_path / "c", tau_grid([0.5], [0, 1], extra={"exploration.tau": 0.5}))
    write_sweep(tmp_path / "d", tau_grid([0.1], [0, 1], extra={"exploration.tau": 0.1}))
    design = aggregate.prepare(load_runs([tmp_path]))
    table = aggregate.vs_hard_max(design, n_resamples=99)
    n_hard = dict(zip(table["tau"], table["n_hard"], strict=False))
    assert n_hard == {0.5: 3, 0.1: 2}  # τ = 0.5 meets the hard max acting alike; 0.1 the ε-greedy


def test_an_unexpected_varying_key_splits_configs_with_a_warning_and_ignore_pools_them(
    tmp_path: Path,
) -> None:
    write_sweep(tmp_path / "a", tau_grid([0, 0.1], [0], extra={"batch_size": 64}))
    write_sweep(tmp_path / "b", tau_grid([0, 0.1], [1]))
    runs = load_runs([tmp_path])
    with pytest.warns(AnalysisWarning, match=r"batch_size ∈ \{64, 32\}"):
        split = aggregate.prepare(runs)
    assert "batch_size" in split.keys
    pooled = aggregate.prepare(runs, ignore=(*aggregate.DEFAULT_IGNORE, "batch_size"))
    assert "batch_size" not in pooled.keys
    assert aggregate.summarize(pooled, n_resamples=99)["n"].max() == 2


def test_logging_and_output_settings_do_not_split_configs(tmp_path: Path) -> None:
    write_sweep(tmp_path / "a", tau_grid([0, 0.1], [0], log_every=50, out_dir="/x"))
    write_sweep(
        tmp_path / "b", tau_grid([0, 0.1], [1], log_every=100, eval_every=200, out_dir="/y")
    )
    design = aggregate.prepare(load_runs([tmp_path]))
    assert aggregate.summarize(design, n_resamples=99)["n"].eq(2).all()


def test_an_unknown_or_unlogged_metric_is_an_error(tmp_path: Path) -> None:
    runs = load_runs([write_run(tmp_path / "r")])
    with pytest.raises(AnalysisError, match="unknown metric 'nope'"):
        aggregate.resolve_metrics(runs, ["nope"])
    with pytest.raises(AnalysisError, match="final_mae_qstar: no run logged exact/mae_qstar"):
        aggregate.resolve_metrics(runs, ["final_mae_qstar"])
    assert "final_mae_qstar" not in [m.name for m in aggregate.resolve_metrics(runs)]


def test_runs_without_a_seed_in_their_config_each_count_once(tmp_path: Path) -> None:
    for i in range(3):
        run_dir = write_run(tmp_path / str(i), tau=0.0, seed=i)
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        del config["seed"]
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    design = aggregate.prepare(load_runs([tmp_path]))
    assert len(design.table) == 3
    assert aggregate.summarize(design, n_resamples=99)["n"].eq(3).all()


# ------------------------------------------------------------------------------- diverged runs

#: (τ, seed) of the runs that diverged, at step 500, in the `diverging` sweep.
DIVERGED = {(0.1, 0), (1.0, 2), (1.0, 3)}


@pytest.fixture
def diverging(tmp_path: Path) -> list[Path]:
    """τ ∈ {0, 0.1, 1.0} × seeds 0–3 in which the runs of `DIVERGED` diverged; and a killed run."""
    root = tmp_path / "runs"
    dirs = write_sweep(root, diverging_grid([0, 0.1, 1.0], range(4), DIVERGED))
    dirs.append(write_run(root / "killed", status="killed", stop_at=700, tau=1.0, seed=4))
    return dirs


def expected_means(run_dirs: list[Path], statuses: set[str]) -> dict[tuple[float, str], float]:
    """The mean over seeds of each metric per τ, from the raw files of the runs with `statuses`."""
    values: dict[tuple[float, str], list[float]] = defaultdict(list)
    for run_dir in run_dirs:
        config, records, status = read_raw(run_dir)
        if status in statuses:
            for metric, value in raw_metrics(records).items():
                values[(float(config["tau"]), metric)].append(value)
    return {key: float(np.mean(v)) for key, v in values.items()}


@pytest.mark.parametrize("include_partial", [False, True])
def test_diverged_runs_are_counted_per_config_and_never_averaged(
    tmp_path: Path, diverging: list[Path], capsys: pytest.CaptureFixture, include_partial: bool
) -> None:
    out = tmp_path / "out"
    argv = [str(tmp_path / "runs"), "--out", str(out), "--no-figures", "--n-resamples", "99"]
    code = cli.main(argv + ["--include-partial"] * include_partial)
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    assert ("softq-analyze: warning: 3 of 13 runs diverged: tau=0.1 (1); tau=1.0 (2); they are "
            "left out of every mean") in stderr
    assert f"13 runs ({9 + include_partial} used, 3 diverged, 3 configs)" in stdout

    summary = pd.read_csv(out / "summary.csv")
    n_diverged = summary.groupby("tau")["n_diverged"].agg(set).to_dict()
    assert n_diverged == {0.0: {0}, 0.1: {1}, 1.0: {2}}
    used = {"finished", "killed"} if include_partial else {"finished"}
    means = {(r.tau, r.metric): r.mean for r in summary.itertuples()}
    assert means == pytest.approx(expected_means(diverging, used), rel=1e-12)
    n = summary[summary["metric"] == "final_return"].set_index("tau")["n"].to_dict()
    assert n == {0.0: 4, 0.1: 3, 1.0: 2 + include_partial}

    versus = pd.read_csv(out / "vs_hard_max.csv").set_index(["tau", "metric"])
    assert versus.loc[(1.0, "final_return"), ["n_diverged", "n_diverged_hard"]].tolist() == [2, 0]
    assert versus.loc[(0.1, "final_return"), ["n_diverged", "n_diverged_hard"]].tolist() == [1, 0]
    assert "| 2/0 |" in (out / "vs_hard_max.md").read_text()

    runs = pd.read_csv(out / "runs.csv")
    assert not runs.loc[runs["status"] == "diverged", "included"].any()
    curves = pd.read_csv(out / "curves.csv")
    eval_at_1 = curves[(curves["tau"] == 1.0) & (curves["metric"] == "eval/return_mean")]
    assert eval_at_1["n"].max() == 2 + include_partial  # the diverged runs are in no curve


def test_a_config_whose_runs_all_diverged_shows_in_the_summary_with_n_0(tmp_path: Path) -> None:
    write_sweep(tmp_path / "s", diverging_grid([0, 1.0], [0, 1], {(1.0, 0), (1.0, 1)}))
    with pytest.warns(AnalysisWarning, match=r"^2 of 4 runs diverged: tau=1.0 \(2\);"):
        design = aggregate.prepare(load_runs([tmp_path]))
    summary = aggregate.summarize(design, n_resamples=99)
    at_1 = summary[summary["tau"] == 1.0]
    assert set(at_1["metric"]) == set(summary.loc[summary["tau"] == 0, "metric"])
    assert (at_1["n"] == 0).all() and (at_1["n_diverged"] == 2).all()
    assert at_1[["mean", "iqm", "ci_low", "ci_high"]].isna().all().all()
    with pytest.warns(AnalysisWarning, match="every τ > 0 run diverged: the versus-hard-max"):
        versus = aggregate.vs_hard_max(design, n_resamples=99)
    assert set(versus["metric"]) == set(at_1["metric"]) and (versus["tau"] == 1.0).all()
    assert (versus["n"] == 0).all() and (versus["n_hard"] == 2).all()
    assert (versus["n_diverged"] == 2).all() and (versus["n_diverged_hard"] == 0).all()
    assert versus[["mean", "diff", "ci_low", "ci_high", "p_improvement"]].isna().all().all()
    md = aggregate.vs_hard_max_markdown(versus, design, n_resamples=99)
    assert "| final_return | higher | 1.0 | soft | – | " in md and "| 0/2 | 2/0 |" in md
    assert plots.final_bias_vs_tau(summary, design) is not None


def test_a_group_whose_hard_max_runs_all_diverged_is_warned_about(tmp_path: Path) -> None:
    write_sweep(tmp_path / "a", tau_grid([0, 0.1], [0, 1]))
    write_sweep(tmp_path / "b", diverging_grid([0, 0.1], [0, 1], {(0, 0), (0, 1)}, env="acrobot"))
    with pytest.warns(AnalysisWarning, match=r"2 of 8 runs diverged: env=acrobot, env.id=acrobot, "
                                             r"tau=0.0 \(2\);"):
        design = aggregate.prepare(load_runs([tmp_path]))
    with pytest.warns(AnalysisWarning, match=r"every τ = 0 run of env=acrobot, .* diverged: its τ > 0 rows"):
        table = aggregate.vs_hard_max(design, n_resamples=99)
    assert set(table["env"]) == {"cartpole"}


@pytest.mark.parametrize(
    "include_partial, message",
    [
        (False, r"none of the 3 runs finished \(2 diverged, 1 killed\); use --include-partial to "
                r"analyse the 1 that did not diverge"),
        (True, r"none of the 2 runs can be averaged \(2 diverged\): diverged runs are left out"),
    ],
)
def test_when_no_run_can_be_averaged_the_error_says_why(
    tmp_path: Path, include_partial: bool, message: str
) -> None:
    write_sweep(tmp_path / "s", diverging_grid([0.5], [0, 1], {(0.5, 0), (0.5, 1)}))
    if not include_partial:
        write_run(tmp_path / "k", status="killed", stop_at=300, tau=0.5, seed=2)
    with pytest.raises(AnalysisError, match=message):
        aggregate.prepare(load_runs([tmp_path]), include_partial=include_partial)


# --------------------------------------------------------------------------- non-finite values


def spoiled_run(run_dir: Path, **config: Any) -> Path:
    """A finished run whose last `overestimation/bias_hard` is NaN and whose second evaluation
    return is +inf (its last one is finite)."""
    records = make_records(make_config(**config))
    records = replace_value(records, "overestimation/bias_hard", math.nan)
    records = replace_value(records, "eval/return_mean", math.inf, nth=1)
    return write_run(run_dir, records=records, **config)


@pytest.fixture
def spoiled(tmp_path: Path) -> tuple[list[Path], Path]:
    """τ ∈ {0, 0.1} × seeds 0–3, finished; the run τ = 0.1, seed 1 logged a NaN and an inf."""
    dirs = write_sweep(tmp_path / "runs", tau_grid([0, 0.1], range(4)))
    return dirs, spoiled_run(dirs[5], tau=0.1, seed=1)


def analyse_spoiled(tmp_path: Path, capsys: pytest.CaptureFixture) -> tuple[Path, str]:
    """softq-analyze on the `spoiled` runs: (its output dir, its stderr)."""
    out = tmp_path / "out"
    code = cli.main([str(tmp_path / "runs"), "--out", str(out), "--no-figures",
                     "--n-resamples", "99"])
    _, stderr = capsys.readouterr()
    assert code == 0, stderr
    return out, stderr


def test_a_nonfinite_metric_value_is_left_out_of_every_statistic_with_one_warning_per_metric(
    tmp_path: Path, spoiled: tuple[list[Path], Path], capsys: pytest.CaptureFixture
) -> None:
    dirs, bad = spoiled
    out, stderr = analyse_spoiled(tmp_path, capsys)
    warned = [ln for ln in stderr.splitlines() if "is NaN or infinite" in ln]
    assert warned == [
        f"softq-analyze: warning: {m} is NaN or infinite in 1 run(s) (non-finite values in "
        f"metrics.jsonl), left out of its statistics: runs/5"
        for m in ("auc_return", "final_bias_hard", "avg_bias_hard")
    ]  # final_return: its last evaluation is finite; the bias_soft values are all finite

    summary = pd.read_csv(out / "summary.csv").set_index(["tau", "metric"])
    numbers = ["mean", "iqm", "ci_low", "ci_high"]
    assert np.isfinite(summary[numbers].to_numpy()).all()
    n = summary.loc[0.1, "n"]
    assert n[["auc_return", "final_bias_hard", "avg_bias_hard"]].eq(3).all()
    assert n[["final_return", "final_bias_soft", "avg_bias_soft"]].eq(4).all()
    others = [d for d in dirs if d != bad and read_raw(d)[0]["tau"] == 0.1]
    for metric in ("auc_return", "final_bias_hard", "avg_bias_hard"):
        expected = np.mean([raw_metrics(read_raw(d)[1])[metric] for d in others])
        assert summary.loc[(0.1, metric), "mean"] == pytest.approx(expected, rel=1e-12)

    versus = pd.read_csv(out / "vs_hard_max.csv").set_index("metric")
    assert np.isfinite(versus[["mean", "mean_hard", "diff", "ci_low", "ci_high",
                               "p_improvement"]].to_numpy()).all()
    assert versus.loc["final_bias_hard", "n"] == 3

    runs = pd.read_csv(out / "runs.csv").set_index("run_id")
    assert runs.loc["runs/5", "n_nonfinite"] == 2 and runs.loc["runs/5", "included"]
    assert np.isnan(runs.loc["runs/5", "final_bias_hard"])
    assert not np.isfinite(runs.loc["runs/5", "auc_return"])  # runs.csv shows the raw value


def test_a_nonfinite_point_neither_poisons_a_mean_curve_nor_is_interpolated_over(
    tmp_path: Path, spoiled: tuple[list[Path], Path], capsys: pytest.CaptureFixture
) -> None:
    _, bad = spoiled
    out, stderr = analyse_spoiled(tmp_path, capsys)
    assert ("eval/return_mean: NaN or infinite values of 1 run(s) are left out of its curve: "
            "runs/5") in stderr
    curves = pd.read_csv(out / "curves.csv")
    assert np.isfinite(curves[["mean"]].to_numpy()).all()
    evals = sorted(r["step"] for r in read_raw(bad)[1] if "eval/return_mean" in r)
    around = curves[(curves["metric"] == "eval/return_mean") & (curves["tau"] == 0.1)]
    inside = (around["x"] > evals[0]) & (around["x"] < evals[2])  # between its finite neighbours
    assert inside.any() and (around.loc[inside, "n"] == 3).all()
    assert (around.loc[~inside, "n"] == 4).all()


def test_curve_statistics_leave_out_infinite_points_given_to_them() -> None:
    curves = pd.DataFrame([[1.0, 2.0], [3.0, np.inf], [5.0, -np.inf]], index=["a", "b", "c"],
                          columns=[0.0, 1.0])
    table = pd.DataFrame({"run_id": ["a", "b", "c"], "tau": 0.0, "seed": [0, 1, 2]})
    empty = table.iloc[:0]
    design = aggregate.Design(table, ["tau"], [], [], pd.DataFrame(), diverged=empty)
    stats = aggregate.curve_stats(curves, design, "k", n_resamples=99).set_index("x")
    assert stats.loc[0.0, ["n", "mean"]].tolist() == [3, 3.0]
    assert stats.loc[1.0, ["n", "mean"]].tolist() == [1, 2.0]


def test_blank_around_leaves_out_the_span_between_the_finite_neighbours() -> None:
    grid = np.arange(0.0, 11.0)
    steps = np.array([0.0, 2.0, 6.0, 10.0])  # a non-finite record at 4
    curve = np.interp(grid, steps, steps)
    blanked = aggregate.blank_around(curve, grid, steps, [4.0])
    assert np.isnan(blanked[3:6]).all() and np.isfinite(np.delete(blanked, [3, 4, 5])).all()
    tail = aggregate.blank_around(curve, grid, steps, [12.0])  # after the last finite record
    assert np.array_equal(tail, curve)
