"""Faults inside a run: divergence, a full disk, Ctrl-C. Each ends in one line and a status."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pandas as pd
import pytest

from helpers import FAST, softq_train

DIVERGING = ["lr=1e30", "optim.name=sgd", "loss=mse", "optim.max_grad_norm=null",
             "lr_schedule=constant"]  # fmt: skip


def records(run_dir):
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("driver", ["host", "device"])
def test_a_non_finite_update_stops_the_run_at_that_learn_call(tmp_path, driver):
    run = tmp_path / "run"
    result = softq_train(*FAST, *DIVERGING, f"driver={driver}", "train.every=1",
                         f"hydra.run.dir={run}", cwd=tmp_path)  # fmt: skip
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("softq-train: run diverged")
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "diverged" and "non-finite" in status["error"]
    # FAST: updates start at step 100 (learning_starts), one learn call per step here; a 1e30 sgd
    # step is non-finite within a few calls, and the run stops at the call that was
    assert 100 <= status["step"] < 110
    logged = records(run)
    assert logged[-1]["step"] == status["step"]  # its last finite learner means, at that step
    assert all(
        isinstance(v, int | float) and v == v and abs(v) != float("inf")
        for r in logged
        for v in r.values()
    )
    assert not any("eval/return_mean" in r for r in logged)  # no evaluation of a diverged learner


def _mount_tmpfs(path, size):
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, check=False)  # fmt: skip
    return done.returncode == 0


@pytest.mark.slow
def test_a_full_disk_ends_the_run_in_one_line_and_leaves_no_cut_record(tmp_path):
    disk = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    if not _mount_tmpfs(disk, "120k"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        run = disk / "run"
        result = softq_train(*FAST, "total_steps=3000", "logger.every=50", "checkpoint.every=0",
                             f"hydra.run.dir={run}", cwd=tmp_path)  # fmt: skip
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "No space left on device" in lines[0], result.stderr
        text = (run / "metrics.jsonl").read_text()
        assert text.endswith("\n")
        assert all(json.loads(line) for line in text.splitlines())  # every record whole
        assert not (run / ".status.json.tmp").exists()
    finally:
        subprocess.run(["umount", str(disk)], check=False)


@pytest.mark.slow
def test_ctrl_c_saves_and_says_in_one_line_how_to_resume(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "softq_lab.run.train", *FAST, "total_steps=100000",
         f"hydra.run.dir={run}"],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (
        (run / "metrics.jsonl").exists() and len(records(run)) > 20
    ):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "Traceback" not in stderr
    (line,) = [x for x in stderr.strip().splitlines() if not x.startswith("softq-train: resuming")]
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "killed"
    assert line.startswith(f"softq-train: interrupted (killed) at step {status['step']}; resume with")
    assert f"hydra.run.dir={run}" in line and "resume=true" in line
    assert (run / "checkpoints" / str(status["step"])).is_dir()


def test_a_diverged_job_is_counted_by_softq_analyze_and_kept_out_of_its_means(tmp_path):
    from softq_lab.analysis import cli

    sweep = tmp_path / "sweep"
    result = softq_train("-m", *FAST, *DIVERGING[1:], "train.every=1", "seed=0", "lr=1e-3,1e30",
                         f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1 and "1 of 2 jobs did not finish" in result.stderr
    out = tmp_path / "analysis"
    assert cli.main([str(sweep), "--out", str(out), "--no-figures"]) in (0, None)
    summary = pd.read_csv(out / "summary.csv")
    by_lr = summary.groupby("lr")[["n", "n_diverged"]].max()
    assert by_lr.loc[1e30].tolist() == [0, 1]  # counted, never averaged
    assert by_lr.loc[1e-3].tolist() == [1, 0]
    used = summary[summary["n"] > 0]
    assert used["mean"].map(lambda x: x == x and abs(x) != float("inf")).all()
