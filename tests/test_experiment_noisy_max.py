"""experiments/noisy_max.py: its exact expectations against closed forms and independent 1-D
integrals, its Monte-Carlo (the project's operators) against them within 3 standard errors, and
its command end to end in quick mode."""

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from scipy import integrate

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "noisy_max.py"
_spec = importlib.util.spec_from_file_location("noisy_max", SCRIPT)
nm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nm)

TAUS = (0.1, 0.5, 1.0)


def _difference_expectation(f) -> float:
    """E[f(|D|)] for D = X_1 − X_2 ~ N(0, 2), by quad: independent of the script's integrals."""
    density = lambda d: math.exp(-d * d / 4.0) / math.sqrt(4.0 * math.pi)  # noqa: E731
    value, _ = integrate.quad(lambda d: 2.0 * f(d) * density(d), 0.0, 40.0, limit=200,
                              epsabs=1e-13, epsrel=1e-12)  # fmt: skip
    return value


def test_exact_hard_max_matches_closed_forms():
    # E[max] of 2 and 3 standard normals: 1/√π and 3/(2√π); of 10 and 100, the tabulated values
    assert nm.hard_exact(2) == pytest.approx(1 / math.sqrt(math.pi), abs=1e-10)
    assert nm.hard_exact(3) == pytest.approx(1.5 / math.sqrt(math.pi), abs=1e-10)
    assert nm.hard_exact(10) == pytest.approx(1.5387527308, abs=1e-9)
    assert nm.hard_exact(100) == pytest.approx(2.5075936, abs=1e-6)


@pytest.mark.parametrize("tau", TAUS)
def test_exact_log_sum_exp_and_boltzmann_match_two_action_forms(tau):
    # M = 1: both are X itself, of mean 0
    assert nm.soft_exact(1, tau) == pytest.approx(0.0, abs=1e-9)
    assert nm.boltzmann_exact(1, tau) == pytest.approx(0.0, abs=1e-9)
    # M = 2, D = X_1 − X_2: log-sum-exp = max + τ·log(1 + e^{−|D|/τ}), E[max] = 1/√π;
    # Boltzmann = (X_1 + X_2)/2 + (D/2)·tanh(D/(2τ))
    soft_2 = 1 / math.sqrt(math.pi) + tau * _difference_expectation(
        lambda d: math.log1p(math.exp(-d / tau)))
    boltzmann_2 = _difference_expectation(lambda d: 0.5 * d * math.tanh(d / (2 * tau)))
    assert nm.soft_exact(2, tau) == pytest.approx(soft_2, abs=1e-9)
    assert nm.boltzmann_exact(2, tau) == pytest.approx(boltzmann_2, abs=1e-9)
    assert nm.mellowmax_exact(2, tau) == pytest.approx(soft_2 - tau * math.log(2), abs=1e-9)


@pytest.mark.parametrize("m", nm.MS)
def test_exact_values_respect_the_operators_bounds(m):
    # max ≤ log-sum-exp ≤ max + τ·log M and Boltzmann ≤ max hold draw by draw, so in expectation;
    # Boltzmann's weights flatten as τ grows, so its expectation falls toward the mean, 0
    hard = nm.hard_exact(m)
    boltzmann = [nm.boltzmann_exact(m, tau) for tau in TAUS]
    for tau in TAUS:
        assert hard < nm.soft_exact(m, tau) < hard + tau * math.log(m)
    assert hard > boltzmann[0] > boltzmann[1] > boltzmann[2] > 0
    assert nm.double_exact(m) == pytest.approx(0.0, abs=1e-12)


def test_monte_carlo_of_the_project_operators_agrees_with_exact_within_3_se():
    table = nm.results_table(draws=200_000, seed=0)
    assert len(table) == len(nm.MS) * len(nm.CONFIGS)
    assert (table["mc_se"] > 0).all() and (table["mc_se"] < 0.02).all()
    worst = table.loc[table["z"].abs().idxmax()]
    assert table["z"].abs().max() < 3, worst.to_dict()
    # the noiseless offsets make mellowmax's bias log-sum-exp's at the same τ, draw by draw
    soft = table[(table["operator"] == "soft") & (table["tau"] == 1.0)].set_index("M")
    mellow = table[table["operator"] == "mellowmax"].set_index("M")
    assert (soft["bias_mc"] - mellow["bias_mc"]).abs().max() < 1e-5
    # the effect itself, far outside the noise: the hard max over-estimates, the double doesn't
    hard = table[table["operator"] == "hard"].set_index("M")
    assert (hard["bias_mc"] > 0.5).all() and hard["bias_mc"].is_monotonic_increasing


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "WANDB_MODE": "offline"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip


def test_quick_mode_writes_the_tidy_csv_and_the_figure(tmp_path):
    out = tmp_path / "noisy_max"
    result = _run("--quick", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(out / "noisy_max.csv")
    assert list(table.columns) == list(nm.CSV_COLUMNS)
    assert len(table) == len(nm.MS) * len(nm.CONFIGS) and table.notna().all().all()
    assert set(table["operator"]) == {"hard", "double", "soft", "mellowmax", "boltzmann"}
    assert set(table["M"]) == set(nm.MS) and (table["draws"] == nm.QUICK_DRAWS).all()
    assert (table["bias_mc"] - (table["mc_mean"] - table["noiseless"])).abs().max() < 1e-8
    assert (table["z"] - (table["mc_mean"] - table["exact"]) / table["mc_se"]).abs().max() < 1e-6
    png = (out / "noisy_max.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and 10_000 < len(png) < 300_000
    assert sorted(p.name for p in out.iterdir()) == ["noisy_max.csv", "noisy_max.png"]  # no temp


@pytest.mark.parametrize("args", [("--draws", "0"), ("--draws", "many"),
                                  ("--quick", "--draws", "100"), ("--out",)])  # fmt: skip
def test_bad_arguments_are_refused_with_a_one_line_error(args, capsys):
    with pytest.raises(SystemExit) as exit_:
        nm.main(list(args))
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("noisy_max.py: error:")


def test_an_out_path_that_is_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "a_file"
    target.write_text("")
    assert nm.main(["--quick", "--out", str(target)]) == 2
    assert capsys.readouterr().err.strip() == f"noisy_max.py: error: --out {target} is not a directory"
