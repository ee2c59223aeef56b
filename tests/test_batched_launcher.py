"""`hydra/launcher=batched` through the real `softq-train -m` entry point: every job is an ordinary
Hydra job (its dir, `.hydra/`, files, offline wandb run) that `softq-analyze` reads like any other."""

import json
from pathlib import Path

import pytest
import yaml

from softq_lab.analysis import cli

from helpers import FAST, softq_train

pytestmark = pytest.mark.slow


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def job_dirs(sweep: Path) -> list[Path]:
    return sorted(p for p in sweep.iterdir() if p.is_dir() and (p / ".hydra").is_dir())


def test_a_batched_sweep_gives_each_job_the_files_of_a_plain_run(tmp_path):
    sweep = tmp_path / "sweep"
    result = softq_train(
        "-m", *FAST, "tau=0,0.1", "seed=0,1", "hydra/launcher=batched",
        f"hydra.sweep.dir={sweep}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    dirs = job_dirs(sweep)
    assert len(dirs) == 4
    for d in dirs:
        assert json.loads((d / "status.json").read_text()) == {"status": "finished", "step": 600}
        for name in ("config.yaml", "overrides.yaml", "hydra.yaml"):
            assert (d / ".hydra" / name).is_file()
        overrides = yaml.safe_load((d / ".hydra" / "overrides.yaml").read_text())
        config = yaml.safe_load((d / "config.yaml").read_text())
        tau = next(float(o.split("=")[1]) for o in overrides if o.startswith("tau="))
        assert config["tau"] == tau  # the job's own values, not a batch-mate's
        wandb_runs = list((d / "wandb").glob("offline-run-*"))
        assert len(wandb_runs) == 1 and any(wandb_runs[0].glob("*.wandb"))
        evals = [r["step"] for r in records(d) if "eval/return_mean" in r]
        assert evals == [300, 600]
        perf = [json.loads(line) for line in (d / "perf.jsonl").read_text().splitlines()]
        # one record per logger.every steps, and the final one after the last evaluation
        assert [p["step"] for p in perf] == [200, 400, 600, 600]
        assert all(p["perf/sps"] > 0 for p in perf[:-1]) and perf[-1]["perf/eval_s"] > 0
        for p in perf:  # the batch's time in the scan and in evaluation, within its wall time
            assert p["perf/device_s"] > 0 and p["perf/eval_s"] >= 0
            assert p["perf/device_s"] + p["perf/eval_s"] <= p["perf/elapsed_s"]


def test_batched_jobs_log_the_same_metric_names_as_a_host_run(tmp_path):
    sweep, alone = tmp_path / "sweep", tmp_path / "alone"
    assert softq_train("-m", *FAST, "tau=0.1", "hydra/launcher=batched",
                       f"hydra.sweep.dir={sweep}", cwd=tmp_path).returncode == 0  # fmt: skip
    assert softq_train(*FAST, "tau=0.1", f"hydra.run.dir={alone}", cwd=tmp_path).returncode == 0
    batched_keys = set().union(*records(job_dirs(sweep)[0]))
    host_keys = set().union(*records(alone))
    assert batched_keys == host_keys


def test_softq_analyze_reads_a_batched_sweep_like_any_other(tmp_path):
    sweep = tmp_path / "sweep"
    result = softq_train(
        "-m", "env=frozenlake", "network=tabular", "total_steps=2000", "eval.every=1000",
        "eval.episodes=5", "buffer.learning_starts=100", "tau=0,0.5", "seed=0,1",
        "hydra/launcher=batched", f"hydra.sweep.dir={sweep}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    keys = set().union(*records(job_dirs(sweep)[0]))
    assert "exact/bias_qstar" in keys and "overestimation/bias_hard" in keys
    out = tmp_path / "analysis"
    assert cli.main([str(sweep), "--out", str(out)]) in (0, None)
    assert (out / "summary.csv").is_file() and (out / "vs_hard_max.csv").is_file()


def test_a_bad_value_fails_its_job_alone_and_the_sweep_exits_non_zero(tmp_path):
    sweep = tmp_path / "sweep"
    result = softq_train("-m", *FAST, "tau=0.1,-1", "hydra/launcher=batched",
                         f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert result.returncode != 0
    assert "tau=-1" in result.stderr and "Traceback" not in result.stderr
    statuses = [json.loads((d / "status.json").read_text()) for d in job_dirs(sweep)]
    assert sorted(s["status"] for s in statuses) == ["failed", "finished"]
    (failed,) = [s for s in statuses if s["status"] == "failed"]
    assert failed["error"].startswith("tau=-1: must be a finite number >= 0")
    assert "softq-train: 1 of 2 jobs did not finish:" in result.stderr


def test_an_env_with_no_jax_version_runs_on_the_batched_host_driver(tmp_path):
    sweep = tmp_path / "sweep"
    result = softq_train("-m", *FAST, "env.id=Blackjack-v1", "seed=0,1", "hydra/launcher=batched",
                         f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "no JAX version" in result.stderr
    for d in job_dirs(sweep):
        assert json.loads((d / "status.json").read_text())["status"] == "finished"


def test_each_batch_can_run_as_one_submitit_job(tmp_path):
    sweep = tmp_path / "sweep"
    result = softq_train(
        "-m", *FAST, "tau=0,0.1", "hydra/launcher=batched", "hydra.launcher.submitit=local",
        f"hydra.sweep.dir={sweep}", cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert any((sweep / ".submitit").iterdir())
    for d in job_dirs(sweep):
        assert json.loads((d / "status.json").read_text()) == {"status": "finished", "step": 600}


def test_a_single_run_on_the_device_driver_writes_what_a_host_run_writes(tmp_path):
    device, host = tmp_path / "device", tmp_path / "host"
    assert (
        softq_train(*FAST, "driver=device", f"hydra.run.dir={device}", cwd=tmp_path).returncode == 0
    )
    assert softq_train(*FAST, "driver=host", f"hydra.run.dir={host}", cwd=tmp_path).returncode == 0
    assert json.loads((device / "status.json").read_text()) == {"status": "finished", "step": 600}
    assert set().union(*records(device)) == set().union(*records(host))
    assert sorted(p.name for p in device.iterdir()) == sorted(p.name for p in host.iterdir())
