"""Run many prepared jobs as few programs: group by what must be static, one batch per group.

Jobs whose configs differ only in traced values (`device.program_key`: seed, τ, γ, lr and its
schedule, ε schedule, behaviour τ, target update, episode limit) share a group; a group larger than
`max_batch` runs as several batches, so a 1,000-run sweep does not have to fit in memory at once.
A group whose env has a JAX version (`envs.native`) runs on the device driver; any other runs on the
batched host driver (one gymnasium env per job, stepped together), after a one-line notice
(`driver=host` / `driver=device` choose). A single `softq-train` run is a batch of one.

Each job keeps its own logger, so its files are exactly a plain run's: `metrics.jsonl`,
`perf.jsonl`, `status.json` and its own offline wandb run, in its own Hydra output dir, and its own
checkpoints (`run.checkpoint`). A stop signal (`run.signals`) makes the running batch save and stop;
later batches do not start. With `resume=true`, finished and diverged jobs are skipped and the others
continue from the newest checkpoint all members of their batch have.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Sequence
from typing import Any

from softq_lab.diagnostics import exact_truth
from softq_lab.drivers import batched_host, device
from softq_lab.envs import make as make_gym
from softq_lab.envs import native
from softq_lab.run import console
from softq_lab.run.checkpoint import BatchCheckpoints
from softq_lab.run.config import one_line
from softq_lab.run.loggers import STATUS_FILE, RunLogger
from softq_lab.run.signals import StopSignals
from softq_lab.run.train import PROG, Job

# A resumed sweep skips these: nothing would change (a diverged run would diverge again).
DONE = ("finished", "diverged")

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
    todo = []
    for i, job in enumerate(jobs):
        previous = _previous_status(job) if job.cfg.resume else None
        if previous is not None and previous["status"] in DONE:
            results[i] = {"eval": {}, "error": None, **previous, "skipped": True}
        else:
            todo.append(i)
    with StopSignals() as stop:
        for members_idx in groups([jobs[i] for i in todo], max_batch):
            members_idx = [todo[k] for k in members_idx]
            members = [jobs[i] for i in members_idx]
            if stop.requested:  # a later batch: it never started, its files stay as they were
                for i in members_idx:
                    results[i] = {"status": stop.requested, "step": 0, "eval": {},
                                  "error": "stopped by a signal before it started"}  # fmt: skip
                continue
            cfg = members[0].cfg
            env = None
            if cfg.driver == "device" or (cfg.driver == "auto" and batched):
                env, reason = native.lookup(cfg.env)
                if env is None:
                    print(f"{PROG}: {cfg.env.id} has no JAX version ({reason}); "
                          f"running its {len(members)} job(s) on the batched host driver",
                          file=sys.stderr)  # fmt: skip
            out = _run(members, env, stop)
            for i, result in zip(members_idx, out, strict=True):
                results[i] = result
    stop.forward()  # a preemption under submitit: now that every file is closed, requeue
    return results


def _previous_status(job: Job) -> dict[str, Any] | None:
    """The `status` and `step` in the job dir's status.json, if it has a readable one."""
    try:
        record = json.loads((job.run_dir / STATUS_FILE).read_text(encoding="utf-8"))
        return {"status": str(record["status"]), "step": int(record.get("step", 0))}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _run(jobs: Sequence[Job], env: native.JaxEnv | None, stop: StopSignals) -> list[dict[str, Any]]:
    """One batch on the device driver (`env`: its JAX env) or, with env None, the host driver."""
    cfg = jobs[0].cfg
    loggers: list[RunLogger] = []
    envs = []
    ckpt = None
    bar = console.Progress(cfg.total_steps, len(jobs)) if console.bar_enabled(cfg.logger.progress) else None
    try:
        for job in jobs:
            loggers.append(RunLogger(job.run_dir, job.wandb, job.resolved, many=True,
                                     resume=job.cfg.resume))  # fmt: skip
        ckpt = BatchCheckpoints(
            [job.run_dir for job in jobs], loggers, cfg.checkpoint.every, cfg.checkpoint.keep,
            resume=cfg.resume, stop=stop,
        )  # fmt: skip
        cfgs, logs = [job.cfg for job in jobs], [lg.log for lg in loggers]
        if bar is not None:
            logs = [bar.tap(r, log) for r, log in enumerate(logs)]
        if env is None:
            envs = [make_gym.make(c.env) for c in cfgs]
            results = batched_host.train_batch(cfgs, envs, logs, ckpt)
        else:
            results = device.train_batch(cfgs, env, logs, _exact_truths(jobs), ckpt)
    except BaseException as err:
        _close_all(loggers, err)
        raise
    finally:
        if bar is not None:
            bar.close()
        for e in envs:
            e.close()
        if ckpt is not None:
            ckpt.close()
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
            truths.append(solved[key])
        return truths
    finally:
        env.close()


def _close_all(loggers: Sequence[RunLogger], err: BaseException) -> None:
    """Every run of a batch that died: `killed` on an interrupt, else `failed`, with the error."""
    status = "killed" if isinstance(err, KeyboardInterrupt) else "failed"
    message = one_line(err)
    for logger in loggers:
        with contextlib.suppress(OSError):  # e.g. a full disk: `err` is what the user must hear of
            logger.close(status, logger.last_step, error=message)
