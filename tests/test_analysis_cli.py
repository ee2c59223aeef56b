"""`softq-analyze` and the scripts in analysis/: outputs, figures, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from softq_lab.analysis import cli

from fake_runs import tau_grid, write_rejected_job, write_run, write_sweep

REPO = Path(__file__).resolve().parents[1]
FIGURES = ("bias_vs_steps", "return_vs_steps", "final_bias_vs_tau", "q_vs_true", "maxbias_left")


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOFTQ_LAB_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    root = tmp_path / "multirun" / "2025-01-01" / "12-00-00"
    write_sweep(root, tau_grid([0, 0.1, 1.0], [0, 1]), env="maxbias", maxbias=True)
    return root


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_writes_tables_and_non_empty_png_and_pdf_figures(
    sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    code, stdout, _ = run_cli(
        capsys, sweep, "--out", out, "--n-resamples", "199", "--curve", "learner/q_mean"
    )
    assert code == 0 and "6 runs" in stdout
    for name in ("runs.csv", "summary.csv", "vs_hard_max.csv", "vs_hard_max.md", "curves.csv"):
        assert (out / name).stat().st_size > 0, name
    for name in (*FIGURES, "curve_learner_q_mean"):
        png, pdf = out / "figures" / f"{name}.png", out / "figures" / f"{name}.pdf"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000, name
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5_000, name
    curves = pd.read_csv(out / "curves.csv")
    assert {
        "eval/return_mean",
        "overestimation/bias_hard",
        "maxbias/left",
        "learner/q_mean",
    } <= set(curves["metric"])
    assert not list(tmp_path.glob(".softq-analyze-*"))  # temporary directory removed


def test_cli_flags_a_killed_run_in_runs_csv_and_warns(
    sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    write_run(sweep / "6", status=None, truncate=True, tau=0.1, seed=9, env="maxbias")
    code, _, err = run_cli(
        capsys, sweep, "--out", tmp_path / "out", "--no-figures", "--n-resamples", "99"
    )
    assert code == 0
    assert "half-written last line" in err and "did not finish (1 killed)" in err
    runs = pd.read_csv(tmp_path / "out" / "runs.csv").set_index("run_id")
    killed = runs.loc["12-00-00/6"]
    assert killed["status"] == "killed" and killed["partial"] and not killed["included"]


def assert_one_line_error(capsys: pytest.CaptureFixture, argv: list, match: str, out: Path) -> None:
    code, _, stderr = run_cli(capsys, *argv, "--out", out)
    errors = [ln for ln in stderr.splitlines() if ": error: " in ln]
    assert code == 2, stderr
    assert len(errors) == 1 and match in errors[0], stderr
    assert stderr.strip().splitlines()[-1] == errors[0]
    assert all(ln.startswith("softq-analyze: ") for ln in stderr.splitlines()), stderr  # no traceback
    assert not out.exists()


def test_cli_error_for_an_empty_directory(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "empty").mkdir()
    assert_one_line_error(
        capsys, [tmp_path / "empty"], f"{tmp_path / 'empty'}: empty directory", tmp_path / "out"
    )


def test_cli_error_for_a_directory_that_is_not_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("not a run")
    assert_one_line_error(capsys, [tmp_path / "notes"], "notes: no runs found", tmp_path / "out")


def test_cli_reports_each_rejected_job_and_analyses_the_runs(
    sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    write_rejected_job(sweep / "6", error="tau: must be >= 0, got -1.0")
    write_rejected_job(sweep / "7", error="operator: unknown 'softer'")
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(capsys, sweep, "--out", out, "--no-figures",
                                   "--n-resamples", "99")
    assert code == 0, stderr
    warnings = [ln for ln in stderr.splitlines() if "not a run" in ln]
    assert warnings == [
        f"softq-analyze: warning: {sweep / '6'}: not a run (status failed, no config.yaml or "
        "metrics.jsonl): tau: must be >= 0, got -1.0",
        f"softq-analyze: warning: {sweep / '7'}: not a run (status failed, no config.yaml or "
        "metrics.jsonl): operator: unknown 'softer'",
    ]
    assert "6 runs" in stdout and len(pd.read_csv(out / "runs.csv")) == 6


def test_cli_error_for_a_sweep_whose_every_job_was_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    for i in range(4):
        write_rejected_job(tmp_path / "sweep" / str(i))
    assert_one_line_error(
        capsys, [tmp_path / "sweep"], "no runs found, only 4 job dir(s) with a status.json",
        tmp_path / "out",
    )


def test_cli_error_for_a_missing_path_and_for_no_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert_one_line_error(
        capsys, [tmp_path / "nope"], "no such file or directory", tmp_path / "out"
    )
    assert_one_line_error(capsys, [], "no runs given", tmp_path / "out")


def test_cli_error_for_an_unknown_metric_and_one_no_run_logged(
    sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert_one_line_error(
        capsys,
        [sweep, "--metric", "final_retrun"],
        "unknown metric 'final_retrun'",
        tmp_path / "out",
    )
    assert_one_line_error(
        capsys,
        [sweep, "--metric", "final_mae_qstar"],
        "no run logged exact/mae_qstar",
        tmp_path / "out",
    )
    assert_one_line_error(
        capsys,
        [sweep, "--curve", "learner/nothing"],
        "--curve learner/nothing: no run logged",
        tmp_path / "out",
    )


def test_cli_warns_for_incompatible_sweeps_says_what_differs_and_writes_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    write_sweep(tmp_path / "a", tau_grid([0], [0, 1], gamma=0.9))
    write_sweep(tmp_path / "b", tau_grid([0.1], [0, 1], gamma=0.99))
    out = tmp_path / "o"
    code, _, stderr = run_cli(capsys, tmp_path / "a", tmp_path / "b", "--out", out,
                              "--n-resamples", "99", "--no-figures")
    assert code == 0, stderr
    assert "incompatible runs: no τ > 0 config matches a τ = 0 config" in stderr
    assert "gamma: τ = 0 has {0.9}, τ > 0 has {0.99}" in stderr
    assert (out / "summary.csv").exists() and (out / "vs_hard_max.md").exists()


def test_cli_analyses_a_run_set_without_a_hard_max_run(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    write_sweep(tmp_path / "s", tau_grid([0.1, 1.0], [0, 1]))
    out = tmp_path / "o"
    code, _, stderr = run_cli(capsys, tmp_path / "s", "--out", out, "--n-resamples", "99",
                              "--no-figures")
    assert code == 0, stderr
    assert "warning: no run has τ = 0 (the hard max)" in stderr
    assert "No τ > 0 config has τ = 0 runs" in (out / "vs_hard_max.md").read_text()


def test_cli_usage_errors_are_one_line_with_exit_code_2(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["somewhere"])
    assert info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_error_leaves_an_existing_output_directory_untouched(
    sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.csv").write_text("old")
    code, _, _ = run_cli(capsys, sweep, "--out", out, "--metric", "nope")
    assert code == 2 and (out / "summary.csv").read_text() == "old"
    assert sorted(p.name for p in out.iterdir()) == ["summary.csv"]


def test_scripts_in_analysis_run_directly(sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "vs"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "analysis" / "vs_hard_max.py"),
            str(sweep),
            "--out",
            str(out),
            "--n-resamples",
            "99",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["vs_hard_max.csv", "vs_hard_max.md"]
    bad = subprocess.run(
        [
            sys.executable,
            str(REPO / "analysis" / "plots.py"),
            str(tmp_path / "nope"),
            "--out",
            str(tmp_path / "p"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
