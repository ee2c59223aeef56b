"""Fake but well-formed run directories, in the format of docs/run-files.md, for analysis tests.

`write_run` writes one job directory (`config.yaml`, `metrics.jsonl`, `perf.jsonl`,
`status.json`, `.hydra/`, `wandb/`); `write_sweep` writes a Hydra multirun directory of such jobs,
`diverging_grid` the grid of a sweep in which some jobs diverged; `write_rejected_job` the job
directory a sweep job leaves when its config is rejected.
Metric values are drawn from a generator seeded by (seed, τ, ...): every run differs, reproducibly.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import yaml


def make_config(
    *,
    env: str = "cartpole",
    network: str = "type1",
    n_step: int = 1,
    gamma: float = 0.99,
    tau: float = 0.0,
    operator: str = "soft",
    double: bool = False,
    seed: int = 0,
    lr: float = 1e-3,
    total_steps: int = 1000,
    log_every: int = 100,
    eval_every: int = 250,
    out_dir: str = "/somewhere/outputs",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A resolved config shaped like the trainer's."""
    cfg: dict[str, Any] = {
        "env": {"name": env, "id": {"cartpole": "CartPole-v1"}.get(env, env), "max_steps": 500},
        "network": {"name": network, "hidden": [64, 64]},
        "n_step": n_step,
        "gamma": gamma,
        "tau": tau,
        "operator": operator,
        "double": double,
        "seed": seed,
        "lr": lr,
        "total_steps": total_steps,
        "batch_size": 32,
        "logger": {"every": log_every},
        "eval": {"every": eval_every, "episodes": 5},
        "wandb": {"mode": "offline", "project": "softq", "group": f"g{seed}"},
        "out_dir": out_dir,
    }
    for key, value in (extra or {}).items():
        node = cfg
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return cfg


def make_records(
    cfg: dict[str, Any],
    *,
    exact: bool = False,
    maxbias: bool = False,
    eval_records: bool = True,
    overestimation: bool = True,
) -> list[dict[str, Any]]:
    """The metrics.jsonl records of a run of `cfg`: episode ends, logger, eval, diagnostics."""
    key = f"{cfg['env']['name']}|{cfg['seed']}|{cfg['tau']}|{cfg['operator']}|{cfg['lr']}"
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    total, log_every, eval_every = cfg["total_steps"], cfg["logger"]["every"], cfg["eval"]["every"]
    tau = float(cfg["tau"])
    records: list[dict[str, Any]] = []
    step, episode = 0, 0
    while True:
        step += int(rng.integers(5, 40))
        if step > total:
            break
        rec: dict[str, Any] = {
            "step": step,
            "train/episode_return": float(rng.normal(20, 5)),
            "train/episode_length": float(rng.integers(5, 40)),
            "train/episode": episode,
        }
        if maxbias:
            rec["maxbias/left"] = float(rng.random() < 0.5 / (1 + episode / 10))
        records.append(rec)
        episode += 1
    for s in range(log_every, total + 1, log_every):
        records.append(
            {
                "step": s,
                "train/epsilon": 0.1,
                "learner/updates": s // 4,
                "learner/loss": float(rng.random()),
                "learner/q_mean": float(rng.normal()),
            }
        )
    eval_steps = [*range(eval_every, total, eval_every), total]
    for i, s in enumerate(eval_steps):
        frac = (i + 1) / len(eval_steps)
        if eval_records:
            records.append(
                {
                    "step": s,
                    "eval/return_mean": float(10 + 50 * frac + rng.normal(0, 3)),
                    "eval/return_std": 1.0,
                    "eval/length_mean": 30.0,
                }
            )
        if overestimation:
            bias = float(2.0 / (1 + 5 * tau) * frac + rng.normal(0, 0.2))
            records.append(
                {
                    "step": s,
                    "overestimation/bias_hard": bias,
                    "overestimation/bias_soft": bias - tau,
                    "overestimation/mae_hard": abs(bias) + 0.1,
                    "overestimation/q_start": float(20 + bias + 10 * frac),
                    "overestimation/return_start_hard": float(20 + 10 * frac),
                    "overestimation/return_start_soft": float(20 + 10 * frac + tau),
                }
            )
        if exact:
            rec = {
                "step": s,
                "exact/converged": float(i > 0),
                "exact/mae_qstar": float(1.0 / (i + 1) + rng.random() * 0.1),
                "exact/q_mean": float(5 + rng.normal()),
                "exact/qstar_mean": 5.0,
            }
            if i > 0:
                rec["exact/mae_fixed_point"] = float(0.5 / (i + 1) + rng.random() * 0.1)
            records.append(rec)
    records.sort(key=lambda r: r["step"])
    return records


#: The one-line `error` in a fake run's status.json, for the statuses that carry one.
STATUS_ERRORS = {
    "failed": "FloatingPointError: loss is nan",
    "diverged": "non-finite learner/loss at step {step}",
}


def write_status(run_dir: Path, status: str, step: int) -> None:
    """`status.json` as the trainer writes it: status, last step, and an error where it has one."""
    record: dict[str, Any] = {"status": status, "step": step}
    if status in STATUS_ERRORS:
        record["error"] = STATUS_ERRORS[status].format(step=step)
    (Path(run_dir) / "status.json").write_text(json.dumps(record) + "\n")


def replace_value(
    records: list[dict[str, Any]], key: str, value: float, nth: int = -1
) -> list[dict[str, Any]]:
    """`records` with the `nth` logged value of `key` (in step order) replaced by `value`, e.g. NaN
    or inf, as an older run that blew up, or a hand-edited file, may hold."""
    logged = [i for i, record in enumerate(records) if key in record]
    out = [dict(record) for record in records]
    out[logged[nth]][key] = value
    return out


def write_run(
    run_dir: Path,
    *,
    status: str | None = "finished",
    truncate: bool = False,
    stop_at: int | None = None,
    records: list[dict[str, Any]] | None = None,
    exact: bool = False,
    maxbias: bool = False,
    eval_records: bool = True,
    overestimation: bool = True,
    **config: Any,
) -> Path:
    """Write a run directory with status.json saying `status` (`None`: no status.json, a run killed
    without notice); `stop_at` keeps only the records up to that step (a run that diverged or was
    stopped there); `truncate=True` also cuts the last line of metrics.jsonl in half (killed
    mid-write)."""
    run_dir = Path(run_dir)
    cfg = make_config(**config)
    if records is None:
        records = make_records(
            cfg,
            exact=exact,
            maxbias=maxbias,
            eval_records=eval_records,
            overestimation=overestimation,
        )
    if stop_at is not None:
        records = [r for r in records if r["step"] <= stop_at]
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"seed={cfg['seed']}"]))
    wandb_files = run_dir / "wandb" / "offline-run-20250101_000000-abc" / "files"
    wandb_files.mkdir(parents=True, exist_ok=True)
    (wandb_files / "config.yaml").write_text(yaml.safe_dump({"seed": {"value": cfg["seed"]}}))
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
    text = "".join(json.dumps(r) + "\n" for r in records)
    if truncate:
        text = text[: len(text) - len(json.dumps(records[-1])) // 2 - 1]
    (run_dir / "metrics.jsonl").write_text(text)
    last = records[-1]["step"] if records else 0
    (run_dir / "perf.jsonl").write_text(
        json.dumps({"step": last, "perf/sps": 1000.0, "perf/elapsed_s": last / 1000}) + "\n"
    )
    if status is not None:
        write_status(run_dir, status, last)
    return run_dir


def write_rejected_job(job_dir: Path, error: str = "tau: must be >= 0, got -1.0") -> Path:
    """A sweep job whose config was rejected: `.hydra/` and a status.json saying `failed` at step 0
    with `error`; no config.yaml, no metrics.jsonl."""
    job_dir = Path(job_dir)
    (job_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    (job_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"tau": -1.0, "seed": 0}))
    (job_dir / "status.json").write_text(
        json.dumps({"status": "failed", "step": 0, "error": error}) + "\n"
    )
    return job_dir


def write_sweep(root: Path, grid: Iterable[dict[str, Any]], **common: Any) -> list[Path]:
    """A Hydra multirun dir: `root/multirun.yaml` and a job dir `root/<i>` per config in `grid`."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"mode": "MULTIRUN"}}))
    return [write_run(root / str(i), **{**common, **job}) for i, job in enumerate(grid)]


def tau_grid(taus: Iterable[float], seeds: Iterable[int], **fixed: Any) -> list[dict[str, Any]]:
    """Every (τ, seed) combination, with `fixed` settings."""
    return [{"tau": t, "seed": s, **fixed} for t in taus for s in seeds]


def diverging_grid(
    taus: Iterable[float],
    seeds: Iterable[int],
    diverged: Iterable[tuple[float, int]],
    at: int = 500,
    **fixed: Any,
) -> list[dict[str, Any]]:
    """`tau_grid(taus, seeds)` in which the (τ, seed) jobs of `diverged` diverged at step `at`:
    status `diverged`, records up to `at` (a diverged run's metrics stop at its last finite ones)."""
    diverged = set(diverged)
    return [
        {**job, "status": "diverged", "stop_at": at} if (job["tau"], job["seed"]) in diverged else job
        for job in tau_grid(taus, seeds, **fixed)
    ]
