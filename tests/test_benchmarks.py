"""The benchmark scripts run end to end in their quick mode (correctness only: no timing is asserted)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def run(script: str, *args: str) -> str:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "WANDB_MODE": "offline"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True, text=True, env=env, timeout=900, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_sweep_speed_quick_mode_prints_every_part():
    out = run("sweep_speed.py", "--quick", "--sweep-workload", "B")
    for part in ("update floor, bare flax+optax", "device driver, 1 run", "batched host driver",
                 "sweep 2 τ × 1 seeds, workload B", "where the batched sweep's",
                 "start-up to the first env step"):  # fmt: skip
        assert part in out, out


def test_fused_updates_runs():
    assert "speed-up vs 1" in run("fused_updates.py", "--total", "32", "--repeats", "1")


def test_analysis_load_benchmark_runs():
    assert "runs" in run("analysis_load.py", "--runs", "3", "--rows", "50")
