"""Interval statistics against direct computations: the IQM's and the probability of improvement's
bootstrap intervals equal a hand-written percentile bootstrap with the same generator, intervals
cover at their nominal rate on a known distribution (and fall short over few seeds, hence the
warning), and the tables keep their columns and gain the new ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from softq_lab.analysis import aggregate, cli

from fake_runs import tau_grid, write_sweep

B = 999


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOFTQ_LAB_CACHE", str(tmp_path / "cache"))


def hand_iqm(x: np.ndarray) -> float:
    """Sort, cut ⌊n/4⌋ values from each end, average the rest."""
    x = np.sort(x)
    cut = len(x) // 4
    return float(x[cut: len(x) - cut].mean())


def hand_p_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of pairs with |x_i| < |y_j| (lower |bias| is better), ties ½."""
    wins = [1.0 if abs(a) < abs(b) else 0.5 if abs(a) == abs(b) else 0.0 for a in x for b in y]
    return sum(wins) / len(wins)


def percentile_interval(values: list[float]) -> tuple[float, float]:
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def test_iqm_and_its_interval_equal_a_hand_written_percentile_bootstrap() -> None:
    x = np.array([3.1, -0.4, 2.2, 8.5, 1.7, 2.9, 0.3, 5.6, 2.0])
    rng = np.random.default_rng(7)  # the generator scipy's bootstrap draws from, seeded alike
    resamples = x[rng.integers(0, len(x), (B, len(x)))]
    expected = percentile_interval([hand_iqm(r) for r in resamples])
    stats = aggregate.sample_stats(x, n_resamples=B, seed=7)
    assert stats["iqm"] == pytest.approx(hand_iqm(x)) == pytest.approx(np.mean([3.1, 2.2, 1.7,
                                                                                2.9, 2.0]))
    assert (stats["iqm_ci_low"], stats["iqm_ci_high"]) == pytest.approx(expected)
    assert stats["iqm_ci_low"] < stats["iqm"] < stats["iqm_ci_high"]


def test_probability_of_improvement_interval_equals_a_hand_written_two_sample_bootstrap() -> None:
    x = np.array([0.2, -0.1, 0.5, 0.05, 0.3])  # biases at τ
    y = np.array([0.9, 0.4, 1.2, -0.6])  # at τ = 0
    rng = np.random.default_rng(3)  # x's resamples first, then y's, as scipy draws them
    xs = x[rng.integers(0, len(x), (B, len(x)))]
    ys = y[rng.integers(0, len(y), (B, len(y)))]
    expected = percentile_interval([hand_p_improvement(a, b) for a, b in zip(xs, ys, strict=True)])
    stats = aggregate.versus_stats(x, y, "closer to 0", n_resamples=B, seed=3)
    assert stats["p_improvement"] == pytest.approx(hand_p_improvement(x, y)) == 0.95  # 19 of 20 pairs
    assert (stats["p_improvement_ci_low"], stats["p_improvement_ci_high"]) == pytest.approx(expected)
    assert 0 <= stats["p_improvement_ci_low"] < 0.95 <= stats["p_improvement_ci_high"] <= 1


def coverage(n: int, statistic, truth: float, repeats: int = 200) -> float:
    """How often the 95% interval over n standard-normal seeds holds the true value."""
    rng = np.random.default_rng(12345)
    hits = 0
    for i in range(repeats):
        x = rng.normal(size=n)
        low, high = aggregate.bootstrap_ci((x,), statistic, n_resamples=499, seed=i)
        hits += low <= truth <= high
    return hits / repeats


def test_intervals_cover_at_about_their_rate_with_many_seeds_and_fall_short_with_few() -> None:
    # normal data: mean and IQM are both 0 in the population
    assert 0.88 <= coverage(20, aggregate.iqm, 0.0) <= 0.99
    assert 0.88 <= coverage(20, np.mean, 0.0) <= 0.99
    assert coverage(3, np.mean, 0.0) < 0.85  # why a CI over < 5 seeds gets a warning


def test_tables_keep_their_columns_gain_the_new_intervals_and_warn_about_few_seeds(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    write_sweep(tmp_path / "runs", tau_grid([0, 0.1], [0, 1, 2]))
    code = cli.main([str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--no-figures",
                     "--n-resamples", "99"])
    _, err = capsys.readouterr()
    assert code == 0
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    versus = pd.read_csv(tmp_path / "out" / "vs_hard_max.csv")
    old_summary = ["n", "n_partial", "n_diverged", "mean", "iqm", "ci_low", "ci_high"]
    old_versus = ["n", "n_hard", "n_diverged", "n_diverged_hard", "mean", "mean_hard", "diff",
                  "ci_low", "ci_high", "p_improvement"]
    assert list(summary.columns)[-9:] == [*old_summary, "iqm_ci_low", "iqm_ci_high"]
    assert list(versus.columns)[-12:] == [*old_versus, "p_improvement_ci_low",
                                          "p_improvement_ci_high"]
    assert (summary["iqm_ci_low"] <= summary["iqm_ci_high"]).all()
    assert ((versus["p_improvement_ci_low"] <= versus["p_improvement"])
            & (versus["p_improvement"] <= versus["p_improvement_ci_high"])).all()
    lines = [line for line in err.splitlines() if "fewer than 5 seeds" in line]
    assert len(lines) == 2, err  # one for summary, one for vs_hard_max
    assert lines[0].startswith("softq-analyze: warning: summary: CIs rest on fewer than 5 seeds "
                               "(n = 3)")
    assert "P(better) [95% CI]" in (tmp_path / "out" / "vs_hard_max.md").read_text()


def test_no_few_seeds_warning_with_five_seeds(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_sweep(tmp_path / "runs", tau_grid([0, 0.1], range(5)))
    assert cli.main([str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--no-figures",
                     "--n-resamples", "99"]) == 0
    assert "fewer than 5 seeds" not in capsys.readouterr().err
