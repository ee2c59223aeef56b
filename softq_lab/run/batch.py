"""Run many prepared jobs as few programs: group by what must be static, one batch per group.

Jobs whose configs differ only in traced values (`device.program_key`: seed, τ, γ, lr and its
schedule, ε schedule, behaviour τ, target update, episode limit) share a group; a group larger than
`max_batch` runs as several batches, so a 1,000-run sweep does not have to fit in memory at once.
A group whose env has a JAX version (`envs.native`) runs on the device driver; any other runs on the
batched host driver (one gymnasium env per job, stepped together), after a one-line notice
(`driver=host` / `driver=device` choose). A single `softq-train` run is a batch of one.

Each job keeps its own logger, so its files are exactly a plain run's: `metrics.jsonl`,
`perf.jsonl`, `status.json` and its own offline wandb run, in its own Hydra output dir.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Sequence
from typing import Any

from softq_lab.diagnostics import exact_truth
from softq_lab.drivers import batched_host, device
from softq_lab.envs import make as make_gym
from softq_lab.envs import native
from softq_lab.run.loggers import RunLogger
from softq_lab.run.train import PROG, Job

DEFAULT_MAX_BATCH = 256


def groups(jobs: Sequence[Job], max_batch: int) -> list[list[int]]:
    """Indices of `jobs` in batches: equal `program_key`, at most `max_batch` each, in job order."""
    by_key: dict[Any, list[int]] = {}
    for i, job in enumerate(jobs):
        by_key.setdefault(device.program_key(job.cfg), []).append(i)
    return [
        members[k : k + max_batch]
        for members in by_key.values()
        for k in range(0, len(members), max_batch)
    ]


def run_jobs(
    jobs: Sequence[Job], max_batch: int = DEFAULT_MAX_BATCH, batched: bool = True
) -> list[dict[str, Any]]:
    """Train every job; returns per job `{"status", "step", "eval", "error"}` in job order.

    `driver=auto` runs on the device driver when `batched` (a sweep) and the env has a JAX version,
    else on the host driver; `driver=host` / `device` force one (`prepare` checked that device can)."""
    results: list[dict[str, Any]] = [{} for _ in jobs]
    for members_idx in groups(jobs, max_batch):
        members = [jobs[i] for i in members_idx]
        cfg = members[0].cfg
        env = None
        if cfg.driver == "device" or (cfg.driver == "auto" and batched):
            env, reason = native.lookup(cfg.env)
            if env is None:
                print(f"{PROG}: {cfg.env.id} has no JAX version ({reason}); "
                      f"running its {len(members)} job(s) on the batched host driver",
                      file=sys.stderr)  # fmt: skip
        out = _run_host(members) if env is None else _run_device(members, env)
        for i, result in zip(members_idx, out, strict=True):
            results[i] = result
    return results


def _run_device(jobs: Sequence[Job], env: native.JaxEnv) -> list[dict[str, Any]]:
    loggers = [RunLogger(job.run_dir, job.wandb, job.resolved, many=True) for job in jobs]
    truths = _exact_truths(jobs)
    try:
        results = device.train_batch(
            [job.cfg for job in jobs], env, [lg.log for lg in loggers], truths
        )
    except BaseException as err:
        _close_all(loggers, err)
        raise
    for logger, result in zip(loggers, results, strict=True):
        logger.close(result["status"], result["step"], error=result["error"])
    return results


def _exact_truths(jobs: Sequence[Job]) -> list[exact_truth.ExactTruth | None]:
    """Each job's exact truth on a tabular env; jobs with equal γ, τ share one solution."""
    cfg = jobs[0].cfg
    env = make_gym.make(cfg.env)
    try:
        solved: dict[tuple[float, float], exact_truth.ExactTruth | None] = {}
        truths = []
        for job in jobs:
            c = job.cfg
            key = (c.gamma, c.tau)
            if key not in solved:
                solved[key] = exact_truth.ExactTruth.maybe(
                    env, gamma=c.gamma, tau=c.tau, operator=c.operator, n_step=c.n_step,
                    entropy_bonus=c.entropy_bonus,
                )  # fmt: skip
            truths.append(copy.copy(solved[key]))
        return truths
    finally:
        env.close()


def _run_host(jobs: Sequence[Job]) -> list[dict[str, Any]]:
    """A batch on the batched host driver: one gymnasium env per job, stepped together."""
    envs = [make_gym.make(job.cfg.env) for job in jobs]
    loggers = [RunLogger(job.run_dir, job.wandb, job.resolved, many=True) for job in jobs]
    try:
        results = batched_host.train_batch(
            [job.cfg for job in jobs], envs, [lg.log for lg in loggers]
        )
    except BaseException as err:
        _close_all(loggers, err)
        raise
    finally:
        for env in envs:
            env.close()
    for logger, result in zip(loggers, results, strict=True):
        logger.close(result["status"], result["step"], error=result["error"])
    return results


def _close_all(loggers: Sequence[RunLogger], err: BaseException) -> None:
    """Every run of a batch that died: `killed` on an interrupt, else `failed`, with the error."""
    status = "killed" if isinstance(err, KeyboardInterrupt) else "failed"
    message = f"{type(err).__name__}: {err}".splitlines()[0]
    for logger in loggers:
        logger.close(status, logger.last_step, error=message)
