"""Each reproduction in experiments/, end to end in its quick mode: sweeps through
`hydra/launcher=batched`, `softq-analyze`, the experiment's own tables and figure; a re-run reuses
the finished sweeps."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def run_script(name: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {
        **os.environ, "JAX_PLATFORMS": "cpu", "WANDB_MODE": "offline",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "SWEEP_DIR": str(tmp_path / "multirun"), "OUT": str(tmp_path / "results"), **env,
    }  # fmt: skip
    return subprocess.run(["bash", str(ROOT / "experiments" / name)], env=environ,
                          capture_output=True, text=True, timeout=900, check=False)  # fmt: skip


def test_maxbias_quick_writes_its_curves_and_reuses_finished_sweeps(tmp_path):
    first = run_script("maxbias.sh", tmp_path, RUNS="3", REFERENCE_RUNS="500", N_RESAMPLES="200")
    assert first.returncode == 0, first.stderr[-3000:]
    table = pd.read_csv(tmp_path / "results" / "maxbias_left.csv")
    assert list(table.columns) == ["label", "tau", "operator", "double", "episode", "n", "mean",
                                   "ci_low", "ci_high", "own_optimum", "reference"]  # fmt: skip
    assert set(table["label"]) == {
        "hard max", "Double Q-learning", "soft τ=0.01", "soft τ=0.1", "soft τ=0.5", "soft τ=1",
        "mellowmax τ=0.1", "mellowmax τ=1", "boltzmann τ=0.1", "boltzmann τ=1",
    }  # fmt: skip
    assert (table["n"] == 3).all() and table["episode"].max() < 300
    own = table.groupby("label")["own_optimum"].first()
    assert own["soft τ=0.5"] == pytest.approx(0.95) and own["hard max"] == pytest.approx(0.05)
    assert table.loc[table["label"] == "hard max", "reference"].notna().all()
    assert (tmp_path / "results" / "maxbias_left.png").stat().st_size > 10_000

    again = run_script("maxbias.sh", tmp_path, RUNS="3", REFERENCE_RUNS="500", N_RESAMPLES="200")
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("reusing") == 3


def test_tabular_exact_quick_writes_the_errors_and_the_decomposition(tmp_path):
    result = run_script("tabular_exact.sh", tmp_path, SEEDS="2", STEPS="1000")
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(tmp_path / "results" / "decomposition.csv")
    assert set(table["env"]) == {"FrozenLake-v1", "CliffWalking-v1"}
    assert len(table) == 2 * 4 * 3 and (table["n"] == 2).all()  # env × τ × (n=1, n=3 ± bonus)
    for column in ("total", "estimation", "offset", "mae_qstar", "mae_fixed_point", "offset_bound"):
        assert table[column].notna().all(), column
    # at τ = 0 every target's fixed point is Q*: no offset, all of the bias is estimation
    assert table.loc[table["tau"] == 0, "offset"].abs().max() < 1e-6
    for name in ("tabular_errors.png", "decomposition.png"):
        assert (tmp_path / "results" / name).stat().st_size > 10_000


def test_cartpole_quick_writes_the_monte_carlo_decomposition(tmp_path):
    result = run_script("cartpole_overestimation.sh", tmp_path, SEEDS="2", STEPS="1500")
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(tmp_path / "results" / "decomposition.csv")
    assert sorted(zip(table["double"], table["tau"], strict=True)) == [
        ("none", 0.0), ("none", 0.01), ("none", 0.1), ("none", 1.0), ("target", 0.0)]
    assert table["final_return"].notna().all() and table["total"].notna().all()
    assert table.loc[table["tau"] == 0, "offset"].abs().max() < 1e-6  # G^τ = G at τ = 0
    assert (tmp_path / "results" / "figures" / "q_vs_true.png").stat().st_size > 10_000


def test_the_decomposition_keeps_operators_apart_and_pools_them_at_tau_zero():
    sys.path.insert(0, str(ROOT / "experiments"))
    from decomposition import TRUTHS, table

    runs = pd.DataFrame({
        "status": "finished", "env": "E", "n_step": 1, "entropy_bonus": False, "double": "none",
        "gamma": 0.9, "operator": ["soft", "mellowmax", "soft", "mellowmax"],
        "tau": [0.0, 0.0, 0.5, 0.5], "final_return": 1.0,
        "overestimation/bias_hard": [1.0, 3.0, 2.0, 4.0],
        "overestimation/bias_soft": [1.0, 3.0, 1.0, 1.0],
    })  # fmt: skip
    t = table(runs, TRUTHS["monte_carlo"])
    assert list(zip(t["operator"], t["tau"], t["n"], strict=True)) == [
        ("hard", 0.0, 2), ("mellowmax", 0.5, 1), ("soft", 0.5, 1)]
    assert t["offset"].tolist() == [0.0, 3.0, 1.0]
