"""End-to-end runs through the Hydra entry point: files, wandb offline, sweeps, determinism."""

import json
from pathlib import Path

import pytest
import yaml

from helpers import FAST, softq_train

pytestmark = pytest.mark.slow


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_short_run_writes_metrics_config_status_and_an_offline_wandb_run(tmp_path):
    out = tmp_path / "run"
    result = softq_train(*FAST, "tau=0.1", f"hydra.run.dir={out}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "status.json").read_text()) == {"status": "finished", "step": 600}
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["tau"] == 0.1 and config["env"]["id"] == "CartPole-v1"
    assert config["env"]["name"] == "CartPole-v1" and config["network"]["name"] == "type2"

    recs = records(out)
    keys = set().union(*recs)
    for key in [
        "train/episode_return",
        "train/episode_length",
        "train/epsilon",
        "learner/loss",
        "learner/td_error",
        "learner/td_abs",
        "learner/q_mean",
        "learner/target_mean",
        "learner/soft_hard_gap",
        "learner/grad_norm",
        "eval/return_mean",
    ]:
        assert key in keys, key
    assert all("step" in r for r in recs)
    evals = [r["step"] for r in recs if "eval/return_mean" in r]
    assert evals == [300, 600]
    assert "perf/sps" not in keys and "perf/sps" in (out / "perf.jsonl").read_text()

    wandb_runs = list((out / "wandb").glob("offline-run-*"))
    assert len(wandb_runs) == 1 and any(wandb_runs[0].glob("*.wandb"))


def test_same_config_and_seed_give_an_identical_metrics_file(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in [(a, 3), (b, 3), (c, 4)]:
        r = softq_train(
            *FAST,
            f"seed={seed}",
            "logger.wandb.mode=disabled",
            f"hydra.run.dir={out}",
            cwd=tmp_path,
        )
        assert r.returncode == 0, r.stderr
    assert (a / "metrics.jsonl").read_bytes() == (b / "metrics.jsonl").read_bytes()
    assert (a / "metrics.jsonl").read_bytes() != (c / "metrics.jsonl").read_bytes()


def test_a_2x2_multirun_gives_one_dir_and_one_wandb_run_per_job(tmp_path):
    sweep = tmp_path / "sweep"
    result = softq_train(
        "-m", *FAST, "tau=0,0.5", "seed=0,1", f"hydra.sweep.dir={sweep}", cwd=tmp_path, timeout=600
    )
    assert result.returncode == 0, result.stderr
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert len(jobs) == 4
    seen = set()
    for job in jobs:
        config = yaml.safe_load((job / "config.yaml").read_text())
        seen.add((config["tau"], config["seed"]))
        assert config["logger"]["wandb"]["group"] == "train-sweep"  # Hydra job name, sweep dir
        assert json.loads((job / "status.json").read_text())["status"] == "finished"
        assert len(list((job / "wandb").glob("offline-run-*"))) == 1
    assert seen == {(0, 0), (0, 1), (0.5, 0), (0.5, 1)}
    # τ = 0 is the hard max: its soft-minus-hard gap is exactly zero
    for job in jobs:
        config = yaml.safe_load((job / "config.yaml").read_text())
        gaps = [r["learner/soft_hard_gap"] for r in records(job) if "learner/soft_hard_gap" in r]
        assert gaps and (all(g == 0.0 for g in gaps) if config["tau"] == 0 else max(gaps) > 0)


@pytest.mark.parametrize("env", ["frozenlake", "taxi", "cliffwalking", "acrobot", "mountaincar"])
def test_every_env_option_runs(tmp_path, env):
    out = tmp_path / "run"
    result = softq_train(
        *FAST,
        f"env={env}",
        "network=type1",
        "logger.wandb.mode=disabled",
        "total_steps=300",
        "eval.every=300",
        f"hydra.run.dir={out}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "status.json").read_text())["status"] == "finished"


def wandb_file_bytes(run_dir: Path) -> bytes:
    """The offline run's record file. wandb has no public reader for it; history keys are stored as
    plain UTF-8 strings inside its protobuf records, so a key's presence can be checked directly."""
    (run_file,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    return run_file.read_bytes()


def test_diagnostics_reach_the_local_file_and_the_wandb_run(tmp_path):
    out = tmp_path / "run"
    result = softq_train(
        *FAST, "env=frozenlake", "network=tabular", "tau=0.1", f"hydra.run.dir={out}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    evals = [r for r in records(out) if "eval/return_mean" in r]
    names = [
        "overestimation/bias_hard",
        "overestimation/bias_soft",
        "overestimation/mae_hard",
        "overestimation/q_start",
        "overestimation/return_start_soft",
        "learner/q_spread",
        "exact/converged",
        "exact/bias_qstar",
        "exact/mae_fixed_point",
        "exact/bias_policy",
        "exact/bias_qstar_visited",
        "eval/target_return_mean",
    ]
    logged = set().union(*evals) | set().union(*records(out))
    assert not [n for n in names if n not in logged]
    wandb_bytes = wandb_file_bytes(out)
    assert not [n for n in names if n.encode() not in wandb_bytes]


def test_a_soft_run_without_a_fixed_point_warns_and_logs_no_number_for_it(tmp_path):
    out = tmp_path / "run"
    result = softq_train(
        *FAST,
        "env=frozenlake",
        "network=tabular",
        "tau=0.1",
        "gamma=1.0",
        "n_step=1",
        "logger.wandb.mode=disabled",
        f"hydra.run.dir={out}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "warning: no fixed point of the target" in result.stderr
    evals = [r for r in records(out) if "exact/converged" in r]
    assert evals and all(r["exact/converged"] == 0.0 for r in evals)
    assert not any("fixed_point" in k for r in evals for k in r)


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_sweeps_run_in_parallel_worker_processes_with_the_launcher_plugins(tmp_path, launcher):
    """joblib (loky workers: no fork after JAX starts) and submitit, the cluster launcher's engine."""
    sweep = tmp_path / "sweep"
    result = softq_train(
        "-m",
        *FAST,
        "seed=0,1",
        "logger.wandb.mode=disabled",
        f"hydra/launcher={launcher}",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    statuses = [json.loads(p.read_text())["status"] for p in sweep.rglob("status.json")]
    assert statuses == ["finished", "finished"]


def test_progress_bar_only_when_asked_or_on_a_terminal(tmp_path):
    quiet = softq_train(
        *FAST, "logger.wandb.mode=disabled", f"hydra.run.dir={tmp_path / 'a'}", cwd=tmp_path
    )
    shown = softq_train(
        *FAST,
        "logger.wandb.mode=disabled",
        "logger.progress=on",
        f"hydra.run.dir={tmp_path / 'b'}",
        cwd=tmp_path,
    )
    assert quiet.returncode == shown.returncode == 0
    assert "step/s" not in quiet.stderr and "600/600" not in quiet.stderr  # not a TTY: silent
    assert "600/600" in shown.stderr and "env steps/s" in shown.stderr
    assert "last eval: greedy return" in shown.stderr and "bias_hard" in shown.stderr
