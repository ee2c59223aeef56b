"""Across envs (rliable's methods on scipy): min-max-normalised scores, their IQM with a stratified
bootstrap CI and the performance profile, against a hand-written computation."""

from __future__ import annotations

from pathlib import Path

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest

from softq_lab.analysis import aggregate, cli, plots
from softq_lab.analysis.across_envs import across_envs, parse_bounds
from softq_lab.analysis.load import AnalysisError, AnalysisWarning, load_runs

from fake_runs import tau_grid, write_sweep

B = 499
ENVS = ("acrobot", "cartpole")


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOFTQ_LAB_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def two_envs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    grid = [job for env in ENVS for job in tau_grid([0, 0.1], range(5), env=env)]
    grid += tau_grid([1.0], range(3), env="cartpole")  # τ = 1 ran on one env only
    write_sweep(root, grid)
    return root


def final_returns(root: Path) -> pd.DataFrame:
    """(env, tau, seed, final_return) of every run (per-run values: test_analysis_aggregate)."""
    design = aggregate.prepare(load_runs([root], cache=False))
    return design.table[["env", "tau", "seed", "final_return"]]


def hand_iqm(x: np.ndarray) -> float:
    x = np.sort(x)
    cut = len(x) // 4
    return float(x[cut: len(x) - cut].mean())


def p_better(x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of pairs (x_i, y_j) with x_i > y_j, ties ½."""
    return float(np.mean([(a > b) + 0.5 * (a == b) for a in x for b in y]))


def test_normalised_iqm_and_its_stratified_interval_equal_a_hand_written_bootstrap(
    two_envs: Path,
) -> None:
    values = final_returns(two_envs)
    lows = values.groupby("env")["final_return"].min()
    highs = values.groupby("env")["final_return"].max()
    design = aggregate.prepare(load_runs([two_envs], cache=False))
    with pytest.warns(AnalysisWarning, match="ran on 1 of 2 envs"):
        table, _, bounds = across_envs(design, n_resamples=B, seed=4)
    assert set(bounds.loc[bounds["metric"] == "final_return", "source"]) == {"data"}
    row = table[(table["tau"] == 0.1) & (table["metric"] == "final_return")].iloc[0]
    scores = {}
    for env in ENVS:  # normalised by the env's lowest and highest final return, over every τ
        x = values[(values["env"] == env) & (values["tau"] == 0.1)].sort_values("seed")
        scores[env] = ((x["final_return"] - lows[env]) / (highs[env] - lows[env])).to_numpy()
    pooled = np.concatenate(list(scores.values()))
    assert row["n_envs"] == 2 and row["n"] == 10
    assert row["iqm"] == pytest.approx(hand_iqm(pooled))
    assert row["mean"] == pytest.approx(pooled.mean())
    rng = np.random.default_rng(4)  # each env resampled on its own, envs in name order
    draws = [s[rng.integers(0, len(s), (B, len(s)))] for s in scores.values()]
    iqms = [hand_iqm(np.concatenate([d[b] for d in draws])) for b in range(B)]
    assert (row["iqm_ci_low"], row["iqm_ci_high"]) == pytest.approx(
        tuple(np.percentile(iqms, [2.5, 97.5])))
    only_one = table[(table["tau"] == 1.0) & (table["metric"] == "final_return")].iloc[0]
    assert only_one["n_envs"] == 1 and only_one["n"] == 3


def test_performance_profile_is_the_env_averaged_fraction_of_runs_above_each_threshold(
    two_envs: Path,
) -> None:
    design = aggregate.prepare(load_runs([two_envs], cache=False))
    bounds = {"acrobot": (0.0, 100.0), "cartpole": (20.0, 70.0)}
    _, profile, limits = across_envs(design, bounds, n_resamples=B)
    assert set(limits["source"]) == {"given"}
    values = final_returns(two_envs)
    hard = profile[(profile["tau"] == 0) & (profile["metric"] == "final_return")]
    for t in (0.2, 0.5, 0.8):
        row = hard.iloc[int(np.argmin(np.abs(hard["threshold"] - t)))]
        fractions = []
        for env, (low, high) in bounds.items():
            x = values[(values["env"] == env) & (values["tau"] == 0)]["final_return"]
            fractions.append(np.mean((x - low) / (high - low) > row["threshold"]))
        assert row["fraction"] == pytest.approx(np.mean(fractions))
        assert row["ci_low"] <= row["fraction"] <= row["ci_high"]
    assert hard["fraction"].is_monotonic_decreasing


def test_score_bounds_must_be_env_low_high() -> None:
    assert parse_bounds(["cartpole=22:500"]) == {"cartpole": (22.0, 500.0)}
    for bad in ("cartpole", "cartpole=5", "cartpole=500:22", "=1:2"):
        with pytest.raises(AnalysisError, match="ENV=LOW:HIGH"):
            parse_bounds([bad])


def test_cli_writes_across_env_tables_and_a_performance_profile_in_tau_colours(
    two_envs: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    code = cli.main([str(two_envs), "--out", str(out), "--n-resamples", "99",
                     "--score-bounds", "cartpole=0:100"])
    assert code == 0
    bounds = pd.read_csv(out / "score_bounds.csv")
    assert bounds.set_index(["env", "metric"]).loc[("cartpole", "final_return"),
                                                   ["low", "high", "source"]].tolist() == [
        0.0, 100.0, "given"]
    assert set(pd.read_csv(out / "across_envs.csv")["metric"]) == {"final_return", "auc_return"}
    assert (out / "figures" / "performance_profile.pdf").stat().st_size > 5_000
    args = cli.build_parser().parse_args([str(two_envs), "--out", "unused", "--n-resamples", "99"])
    fig = cli.analyze(cli.load(args), args).figures["performance_profile"]
    colours = {line.get_label(): mcolors.to_hex(line.get_color())
               for ax in fig.axes for line in ax.get_lines()}
    taus = [0, 0.1, 1.0]
    assert colours == {"hard max (τ = 0)": "#000000",
                       "soft τ = 0.1": mcolors.to_hex(plots.tau_color(0.1, taus)),
                       "soft τ = 1": mcolors.to_hex(plots.tau_color(1.0, taus))}
    caption = fig.legends[0].get_title().get_text().replace("\n", " ")
    assert "n = 3–5 seeds per config and env" in caption and "stratified" in caption

    table = pd.read_csv(out / "across_envs.csv")
    args = cli.build_parser().parse_args([str(two_envs), "--out", "unused", "--n-resamples", "99",
                                          "--score-bounds", "cartpole=0:100"])
    fig = cli.analyze(cli.load(args), args).figures["iqm_across_envs"]
    left = fig.axes[0]  # final return: one point per algorithm at its IQM, in its τ's colour
    points = {mcolors.to_hex(bar.lines[0].get_color()): bar.lines[0].get_xdata()[0]
              for bar in left.containers if bar.get_label() == "_iqm"}
    final = table[table["metric"] == "final_return"].set_index("tau")["iqm"]
    assert points == pytest.approx({mcolors.to_hex(plots.tau_color(t, taus)): final[t]
                                    for t in taus})
    assert [t.get_text() for t in left.get_yticklabels()] == [
        "hard max (τ = 0)", "soft τ = 0.1", "soft τ = 1"]
    assert "bars: 95% stratified" in fig.legends[0].get_title().get_text().replace("\n", " ")


def test_one_env_has_no_across_env_outputs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_sweep(tmp_path / "runs", tau_grid([0, 0.1], [0, 1]))
    assert cli.main([str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--n-resamples",
                     "99"]) == 0
    written = {p.name for p in (tmp_path / "out").rglob("*")}
    assert not written & {"across_envs.csv", "performance_profile.csv", "score_bounds.csv",
                          "performance_profile.png"}


def test_a_bad_score_bound_is_a_one_line_error(two_envs: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    code = cli.main([str(two_envs), "--out", str(tmp_path / "out"), "--score-bounds", "x=3:1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "ENV=LOW:HIGH" in err
    assert not (tmp_path / "out").exists()


def test_probability_of_improvement_across_envs_averages_the_envs_and_has_its_interval(
    two_envs: Path,
) -> None:
    design = aggregate.prepare(load_runs([two_envs], cache=False))
    with pytest.warns(AnalysisWarning):
        table, _, _ = across_envs(design, n_resamples=B, seed=2)
    values = final_returns(two_envs)
    rows = table[table["metric"] == "final_return"].set_index("tau")
    per_env = {}
    for env in ENVS:
        at = values[values["env"] == env]
        x = at[at["tau"] == 0.1].sort_values("seed")["final_return"].to_numpy()
        y = at[at["tau"] == 0].sort_values("seed")["final_return"].to_numpy()
        per_env[env] = (x, y)
    assert rows.loc[0.1, "p_improvement"] == pytest.approx(
        np.mean([p_better(x, y) for x, y in per_env.values()]))
    rng = np.random.default_rng(2)  # x then y of each env, envs in name order
    draws = [s[rng.integers(0, len(s), (B, len(s)))] for pair in per_env.values() for s in pair]
    stats = [np.mean([p_better(draws[2 * e][b], draws[2 * e + 1][b]) for e in range(2)])
             for b in range(B)]
    assert (rows.loc[0.1, "p_improvement_ci_low"], rows.loc[0.1, "p_improvement_ci_high"]) == \
        pytest.approx(tuple(np.percentile(stats, [2.5, 97.5])))
    assert np.isnan(rows.loc[0.0, "p_improvement"])
    # τ = 1 ran on cartpole only: its P is cartpole's alone
    x = values[(values["env"] == "cartpole") & (values["tau"] == 1.0)]["final_return"]
    y = per_env["cartpole"][1]
    assert rows.loc[1.0, "p_improvement"] == pytest.approx(p_better(x.to_numpy(), y))
