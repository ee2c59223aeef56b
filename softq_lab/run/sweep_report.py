"""The end of a sweep: which jobs did not finish, and the sweep's exit code.

A job never stops its sweep: a bad value, a runtime error, a divergence or a kill is written to that
job's `status.json` and the launcher goes on. Once every job is done, this Hydra callback (set in
`conf/config.yaml`, run in the main process whatever the launcher: basic, joblib, submitit, batched)
reads the status of each job of this sweep and, if any did not finish, lists them as the last lines
on stderr and exits 1.
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


def _overrides(job_dir: Path) -> str:
    try:
        task = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return "?"
    return " ".join(str(o) for o in task or []) or "(defaults)"


def jobs_since(sweep_dir: Path, start: float) -> list[Path]:
    """The job dirs of the sweep that started at `start`: Hydra writes `.hydra/` for each job it
    runs (a reused sweep dir may hold older jobs as well)."""
    found = [p.parent.parent for p in sweep_dir.glob("**/.hydra/overrides.yaml")]
    return sorted(
        (d for d in found if (d / ".hydra" / "overrides.yaml").stat().st_mtime >= start - 1),
        key=lambda d: str(d.relative_to(sweep_dir)).zfill(12),
    )


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
        code = report(sweep_dir, jobs_since(sweep_dir, self.start))
        if code:
            sys.exit(code)
