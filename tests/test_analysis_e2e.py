"""The analysis on a real small sweep from the trainer: every number recomputed from the raw files."""

import shutil
from pathlib import Path

import pandas as pd
import pytest

from softq_lab.analysis import cli

from helpers import FAST, softq_train
from test_analysis_aggregate import N_RESAMPLES, check_table, expected_tables

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    result = softq_train(
        "-m",
        *FAST,
        "env=frozenlake",
        "network=tabular",
        "tau=0,0.5",
        "seed=0,1,2",
        "logger.wandb.mode=disabled",
        f"hydra.sweep.dir={root / 'multirun'}",
        cwd=root,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return root / "multirun"


def test_summary_and_vs_hard_max_equal_an_independent_computation(sweep, tmp_path, monkeypatch):
    monkeypatch.setenv("SOFTQ_LAB_CACHE", str(tmp_path / "cache"))
    runs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    killed = tmp_path / "killed"  # a copy of one run, killed mid-write: half a line, no status
    shutil.copytree(runs[-1], killed)
    (killed / "status.json").unlink()
    text = (killed / "metrics.jsonl").read_text()
    (killed / "metrics.jsonl").write_text(text[: len(text) // 2])

    out = tmp_path / "out"
    code = cli.main([str(sweep), str(killed), "--out", str(out), "--n-resamples", str(N_RESAMPLES)])
    assert code == 0
    summary, versus = expected_tables([*runs, killed])
    assert {key[3] for key in summary} >= {"final_return", "final_bias_hard", "final_mae_qstar"}
    check_table(out / "summary.csv", summary)
    check_table(out / "vs_hard_max.csv", versus)

    table = pd.read_csv(out / "runs.csv").set_index("run_id")
    assert (table["status"] == "killed").sum() == 1 and (table["status"] == "finished").sum() == 6
    figures = sorted((out / "figures").glob("*.p*"))
    assert figures and all(f.stat().st_size > 1000 for f in figures)
    assert {f.stem for f in figures} >= {"bias_vs_steps", "return_vs_steps", "final_bias_vs_tau"}
