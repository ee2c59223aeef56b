"""What a run says when it ends (stdout, on a terminal or not), the table a sweep ends with, the
progress bar on a terminal, and the offline wandb run's records (name, group, job type, tags, x-axis,
summary) as `wandb sync` will upload them."""

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from helpers import FAST, softq_train, wandb_records

pytestmark = pytest.mark.slow
TABULAR = ["env=frozenlake", "network=tabular"]


def last_evaluation(run_dir: Path) -> dict:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if "eval/return_mean" in line][-1]


def block_rows(stdout: str) -> dict[str, str]:
    """The summary block's `label: value` rows."""
    rows = [line.strip().split(":  ", 1) for line in stdout.split("\n")
            if line.startswith("  ") and ":  " in line]  # fmt: skip
    return {label.rstrip(":").strip(): value.strip() for label, value in rows}


def run_on_a_terminal(*overrides: str, cwd: Path) -> str:
    """softq-train with stdout and stderr on a pseudo-terminal; everything it wrote there."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))  # 200 columns
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "softq_lab.run.train", *overrides],
        cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower,
    )  # fmt: skip
    os.close(follower)
    out = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 300)
        if not ready:
            proc.kill()
            break
        try:
            data = os.read(leader, 4096)
        except OSError:  # the terminal closed: the process has exited
            break
        if not data:
            break
        out += data
    os.close(leader)
    assert proc.wait(timeout=60) == 0, out.decode(errors="replace")[-2000:]
    return out.decode(errors="replace").replace("\r\n", "\n")


def test_a_run_ends_with_its_summary_on_stdout_off_a_terminal_and_its_wandb_run_is_findable(
    tmp_path,
):
    out = tmp_path / "run"
    result = softq_train(*FAST, *TABULAR, "tau=0.1", "seed=3", f"hydra.run.dir={out}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # stderr is for errors; the summary is on stdout

    final = last_evaluation(out)
    lines = result.stdout.splitlines()
    assert lines[0] == "softq-train: run finished at step 600"
    rows = block_rows(result.stdout)
    assert float(rows["greedy eval return"]) == pytest.approx(final["eval/return_mean"], abs=0.05)
    for label, key in [("over-estimation bias vs hard return", "overestimation/bias_hard"),
                       ("over-estimation bias vs soft return", "overestimation/bias_soft"),
                       ("exact bias vs Q*", "exact/bias_qstar"),
                       ("exact |q - Q*|", "exact/mae_qstar")]:  # fmt: skip
        assert float(rows[label]) == pytest.approx(final[key], rel=0.01, abs=1e-3), label
    assert rows["run dir"] == str(out)
    assert rows["upload to wandb"] == f"wandb sync {out}/wandb/offline-run-*"
    assert len(list(out.glob("wandb/offline-run-*"))) == 1  # the command names the real run
    assert rows["analyze"] == f"softq-analyze {out} --out {out}/analysis"

    # The wandb run: named by its overrides, job type `train`, no group (a single run), every
    # metric against the env step, and the final evaluation and status in its summary.
    records = wandb_records(out)
    (run,) = [r.run for r in records if r.HasField("run")]
    assert run.display_name == ",".join(sorted([*FAST, *TABULAR, "tau=0.1", "seed=3"]))
    assert run.job_type == "train" and run.run_group == "" and list(run.tags) == []
    metrics = [r.metric for r in records if r.HasField("metric")]
    assert [(m.name, m.glob_name, m.step_metric) for m in metrics] == [
        ("step", "", ""), ("", "*", "step")
    ]
    summary = {}
    for r in records:
        if r.HasField("summary"):
            summary.update({"/".join(u.nested_key) or u.key: json.loads(u.value_json)
                            for u in r.summary.update})  # fmt: skip
    assert summary["status"] == "finished" and summary["step"] == 600
    for key in ("eval/return_mean", "overestimation/bias_hard", "exact/mae_qstar"):
        assert summary[key] == pytest.approx(final[key])
    history = [r.history for r in records if r.HasField("history")]
    steps = [{i.key or "/".join(i.nested_key): i.value_json for i in h.item}["step"] for h in history]
    assert steps[-1] == "600"  # the env step is logged with every record


def test_on_a_terminal_the_bar_shows_env_steps_eta_eval_return_and_bias_then_the_summary(tmp_path):
    out = tmp_path / "run"
    text = run_on_a_terminal(*FAST, *TABULAR, "tau=0.1", f"hydra.run.dir={out}", cwd=tmp_path)
    final = last_evaluation(out)
    bar = [part for part in text.split("\r") if "600/600" in part][-1]
    assert "env steps/s" in bar and "<00:00" in bar  # the rate in env steps, and the time left
    assert f"greedy return {final['eval/return_mean']:.1f}" in bar
    assert f"bias_hard {final['overestimation/bias_hard']:+.3g}" in bar
    assert "softq-train: run finished at step 600" in text
    assert block_rows(text)["run dir"] == str(out)


def test_a_sweep_ends_with_a_table_of_its_jobs_on_stdout_before_the_unfinished_ones_on_stderr(
    tmp_path,
):
    sweep = tmp_path / "sweep"
    result = softq_train(
        "-m", *FAST, *TABULAR, "seed=0", "tau=-1,0.1", f"hydra.sweep.dir={sweep}", cwd=tmp_path
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-2:] == [
        "softq-train: 1 of 2 jobs did not finish:",
        "  #0 " + " ".join([*FAST, *TABULAR, "seed=0", "tau=-1"]) + ": failed: tau=-1: must be "
        "a finite number >= 0",
    ]
    lines = result.stdout.splitlines()
    start = lines.index(f"softq-train: sweep {sweep}: 2 jobs")
    table = lines[start:]
    assert table[1] == "  every job: " + " ".join([*FAST, *TABULAR, "seed=0"])
    assert table[2].split() == ["job", "overrides", "status", "return"]
    assert table[3].split() == ["#0", "tau=-1", "failed", "-"]
    final = last_evaluation(sweep / "1")["eval/return_mean"]
    assert table[4].split() == ["#1", "tau=0.1", "finished", f"{final:.1f}"]
    assert table[5].split(":", 1)[1].strip() == f"wandb sync {sweep}/*/wandb/offline-run-*"
    assert table[6].split(":", 1)[1].strip() == f"softq-analyze {sweep} --out {sweep}/analysis"
    # Each job of a (non-batched) sweep says one line as it ends.
    assert any(line.startswith("softq-train: job #1 ") and "finished at step 600" in line
               for line in lines[:start])  # fmt: skip

    (run,) = [r.run for r in wandb_records(sweep / "1") if r.HasField("run")]
    assert run.run_group == f"train-{sweep.name}" and run.job_type == "train"
    assert "tau=0.1" in run.display_name.split(",")
