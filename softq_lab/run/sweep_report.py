"""The end of a sweep: a table of its jobs, which did not finish, and the sweep's exit code.

A job never stops its sweep: a bad value, a runtime error, a divergence or a kill is written to that
job's `status.json` and the launcher goes on. Once every job is done, this Hydra callback (set in
`conf/config.yaml`, run in the main process whatever the launcher: basic, joblib, submitit, batched)
reads the status and last evaluation of each job of this sweep, prints a table of them and the
commands to run next on stdout, then, if any job did not finish, lists those as the last lines on
stderr and exits 1.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from softq_lab.run import console
from softq_lab.run.loggers import STATUS_FILE

PROG = "softq-train"


def job_status(job_dir: Path) -> tuple[str, str | None]:
    """(status, one-line error) from a job dir's status.json; `no status` when it has none (killed
    hard, or never ran)."""
    try:
        record = json.loads((job_dir / STATUS_FILE).read_text(encoding="utf-8"))
        return str(record["status"]), record.get("error")
    except (OSError, ValueError, KeyError, TypeError):
        return "no status", None


def _override_list(job_dir: Path) -> list[str] | None:
    """The job's command-line overrides (None when unreadable)."""
    try:
        task = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return [str(o) for o in task or []]


def _overrides(job_dir: Path, common: frozenset[str] = frozenset()) -> str:
    """The job's overrides on one line, leaving out `common` (those every job of the sweep has)."""
    task = _override_list(job_dir)
    if task is None:
        return "?"
    return " ".join(o for o in task if o not in common) or "(defaults)"


def jobs_since(sweep_dir: Path, start: float) -> list[Path]:
    """The job dirs of the sweep that started at `start`: Hydra writes `.hydra/` for each job it
    runs (a reused sweep dir may hold older jobs as well)."""
    found = [p.parent.parent for p in sweep_dir.glob("**/.hydra/overrides.yaml")]
    return sorted(
        (d for d in found if (d / ".hydra" / "overrides.yaml").stat().st_mtime >= start - 1),
        key=lambda d: str(d.relative_to(sweep_dir)).zfill(12),
    )


def table(sweep_dir: Path, jobs: list[Path]) -> list[str]:
    """Every job's overrides (those all jobs share on a line of their own), status and final greedy
    return; then what to run next."""
    lists = [task for task in map(_override_list, jobs) if task is not None]
    common = frozenset.intersection(*map(frozenset, lists)) if len(lists) > 1 else frozenset()
    rows = [
        (str(d.relative_to(sweep_dir)), _overrides(d, common), job_status(d)[0],
         console.last_evaluation(d).get(console.RETURN))
        for d in jobs
    ]  # fmt: skip
    shared = [f"  every job: {' '.join(o for o in lists[0] if o in common)}"] if common else []
    offline = any(next(d.glob("wandb/offline-run-*"), None) for d in jobs)
    depth = "/".join("*" for _ in Path(rows[0][0]).parts) if rows else "*"
    return [
        f"{PROG}: sweep {sweep_dir}: {len(jobs)} jobs",
        *shared,
        *console.sweep_table(rows),
        *console.aligned(console.next_commands(f"{sweep_dir}/{depth}", sweep_dir, offline)),
    ]


def report(sweep_dir: Path, jobs: list[Path]) -> int:
    """Print the jobs that did not finish (last lines on stderr); the sweep's exit code."""
    unfinished = [(d, *job_status(d)) for d in jobs]
    unfinished = [(d, s, e) for d, s, e in unfinished if s != "finished"]
    if not unfinished:
        return 0
    print(f"{PROG}: {len(unfinished)} of {len(jobs)} jobs did not finish:", file=sys.stderr)
    for job_dir, status, error in unfinished:
        detail = f": {error}" if error else ""
        name = job_dir.relative_to(sweep_dir)
        print(f"  #{name} {_overrides(job_dir)}: {status}{detail}", file=sys.stderr)
    return 1


class SweepReport(Callback):
    """`hydra.callbacks.sweep_report`: the report above at the end of every multirun."""

    def __init__(self) -> None:
        self.start = time.time()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.start = time.time()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        jobs = jobs_since(sweep_dir, self.start)
        print("\n".join(table(sweep_dir, jobs)), flush=True)
        code = report(sweep_dir, jobs)
        if code:
            sys.exit(code)
