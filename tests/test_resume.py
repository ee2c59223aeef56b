"""Checkpoint and resume: a run killed at any point and resumed writes the same `metrics.jsonl` as a
run never interrupted (real processes, real signals)."""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import softq_train

SMALL = [  # a few seconds a process; checkpoints every 500 steps; a big buffer makes writes slow
    "total_steps=3000",
    "buffer.learning_starts=200",
    "buffer.capacity=200000",
    "batch_size=32",
    "network.hidden_sizes=[16]",
    "logger.every=250",
    "eval.every=1000",
    "eval.episodes=30",
    "checkpoint.every=500",
]
RUNS = {
    "device-cartpole": ["driver=device"],  # a JAX env: its state is in the checkpoint
    "host-frozenlake": ["env=frozenlake", "network=tabular"],  # a gymnasium env's snapshot
}


def start(run_dir: Path, *overrides: str) -> subprocess.Popen:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "JAX_PLATFORMS": "cpu"}
    return subprocess.Popen(
        [sys.executable, "-m", "softq_lab.run.train", *overrides, f"hydra.run.dir={run_dir}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def lines(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")]


def checkpoints(run_dir: Path) -> tuple[list[int], bool]:
    """(complete checkpoint steps, whether one is being written)."""
    folder = run_dir / "checkpoints"
    names = os.listdir(folder) if folder.exists() else []
    return sorted(int(n) for n in names if n.isdigit()), any("tmp" in n for n in names)


def kill_when(proc: subprocess.Popen, condition: Callable[[], bool], timeout: float = 120) -> None:
    """SIGKILL `proc` at a moment `condition` holds: it is frozen (SIGSTOP) when the condition is
    seen, checked again while frozen, and killed only if it still holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the run ended before the kill point: {proc.stderr.read()}"
        if condition():
            proc.send_signal(signal.SIGSTOP)
            if condition():
                proc.kill()
                proc.wait()
                return
            proc.send_signal(signal.SIGCONT)
        time.sleep(0.001)
    proc.kill()
    raise AssertionError("the kill point never came")


def in_evaluation(run_dir: Path, step: int) -> Callable[[], bool]:
    """The learner record at eval step `step` is written, its evaluation record not yet."""

    def condition() -> bool:
        records = lines(run_dir)
        return bool(records) and records[-1]["step"] == step and "learner/updates" in records[-1]

    return condition


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RUNS))
def test_killed_at_five_points_and_resumed_equals_an_uninterrupted_run(tmp_path, name):
    args = [*SMALL, *RUNS[name]]
    reference = tmp_path / "reference"
    done = softq_train(*args, f"hydra.run.dir={reference}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr

    run = tmp_path / "run"
    kill_points = [
        ("before the first checkpoint", lambda: len(lines(run)) > 3 and not checkpoints(run)[0]),
        ("right after a checkpoint", lambda: checkpoints(run)[0][-1:] == [1000]),
        ("while writing a checkpoint", lambda: checkpoints(run)[1]),
        ("during an evaluation", in_evaluation(run, 2000)),
        ("at the last step", in_evaluation(run, 3000)),
    ]
    for i, (_, condition) in enumerate(kill_points):
        kill_when(start(run, *args, *(["resume=true"] if i else [])), condition)
    resumed = softq_train(*args, "resume=true", f"hydra.run.dir={run}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr

    assert (run / "metrics.jsonl").read_bytes() == (reference / "metrics.jsonl").read_bytes()
    assert json.loads((run / "status.json").read_text())["status"] == "finished"
    assert len(checkpoints(run)[0]) <= 2  # checkpoint.keep


@pytest.mark.slow
def test_sigterm_saves_then_resume_continues_the_same_run_and_wandb_run(tmp_path):
    args = [*SMALL, "env=maxbias", "total_steps=4000"]  # MaxBias: Gaussian rewards, action masks
    reference = tmp_path / "reference"
    assert softq_train(*args, f"hydra.run.dir={reference}", cwd=tmp_path).returncode == 0

    run = tmp_path / "run"
    proc = start(run, *args)
    deadline = time.monotonic() + 120
    while len(lines(run)) < 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "killed" and proc.returncode != 0
    assert checkpoints(run)[0][-1] == status["step"]  # saved where it stopped
    assert "resume=true" in stderr.strip().splitlines()[-1] and "Traceback" not in stderr

    resumed = softq_train(*args, "resume=true", f"hydra.run.dir={run}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert (run / "metrics.jsonl").read_bytes() == (reference / "metrics.jsonl").read_bytes()
    wandb_runs = sorted((run / "wandb").glob("offline-run-*"))
    assert len(wandb_runs) == 2 and len({p.name.rsplit("-", 1)[1] for p in wandb_runs}) == 1


def test_a_run_dir_that_holds_a_run_is_an_error_without_resume(tmp_path):
    args = ["total_steps=300", "buffer.learning_starts=100", "batch_size=32", "eval.every=300",
            "eval.episodes=1", "network.hidden_sizes=[8]", f"hydra.run.dir={tmp_path / 'run'}"]  # fmt: skip
    assert softq_train(*args, cwd=tmp_path).returncode == 0
    before = (tmp_path / "run" / "metrics.jsonl").read_bytes()

    again = softq_train(*args, cwd=tmp_path)
    assert again.returncode == 2
    (line,) = again.stderr.strip().splitlines()
    assert "already holds a run (status finished)" in line and "resume=true" in line
    assert (tmp_path / "run" / "metrics.jsonl").read_bytes() == before  # nothing appended

    other = softq_train(*args, "tau=0.5", "resume=true", cwd=tmp_path)
    assert other.returncode == 2
    assert "has another config (tau=0.01 there, 0.5 now)" in other.stderr

    finished = softq_train(*args, "resume=true", cwd=tmp_path)
    assert finished.returncode == 0  # a finished run is skipped
    assert (tmp_path / "run" / "metrics.jsonl").read_bytes() == before


@pytest.mark.slow
def test_the_cluster_preset_requeues_a_preempted_job_which_resumes(tmp_path):
    """`cluster=local` is the SLURM preset on submitit's local executor: USR2 (the preemption
    warning) makes the job save, submitit requeues it, and the requeued job resumes."""
    import psutil

    args = [*SMALL, "driver=device", "total_steps=20000", "eval.episodes=2"]
    reference = tmp_path / "reference"
    assert softq_train(*args, f"hydra.run.dir={reference}", cwd=tmp_path).returncode == 0

    sweep = tmp_path / "sweep"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "softq_lab.run.train", "-m", *args, "cluster=local",
         f"hydra.sweep.dir={sweep}"],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not checkpoints(sweep / "0")[0] and time.monotonic() < deadline:
        time.sleep(0.05)
    tasks = [
        p
        for p in psutil.Process(proc.pid).children(recursive=True)
        if "submitit.core._submit" in " ".join(p.cmdline())
    ]
    assert len(tasks) == 1
    tasks[0].send_signal(signal.SIGUSR2)
    assert proc.wait(timeout=180) == 0

    logs = "".join(p.read_text() for p in sweep.glob(".submitit/*/*_log.err"))
    assert "Requeued job" in logs
    assert f"softq-train: resuming {sweep / '0'} from step " in logs
    assert json.loads((sweep / "0" / "status.json").read_text())["status"] == "finished"
    assert (sweep / "0" / "metrics.jsonl").read_bytes() == (reference / "metrics.jsonl").read_bytes()
