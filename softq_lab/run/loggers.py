"""Where a run's numbers go: a local line-per-record file and wandb, under the same names.

`metrics.jsonl` gets one JSON object per record, `{"step": ..., "<prefix>/<name>": ...}`, appended and
flushed at once, so a killed run keeps everything logged before the kill. Timing (`perf/...`) goes to
`perf.jsonl` instead, so that `metrics.jsonl` is identical for the same config and seed. wandb gets every
record (offline by default: no account, no network), with its files inside the run's directory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from softq_lab.run.config import WandbConfig

METRICS_FILE = "metrics.jsonl"
PERF_FILE = "perf.jsonl"
STATUS_FILE = "status.json"
CONFIG_FILE = "config.yaml"
PERF_PREFIX = "perf/"


def _plain(value: Any) -> Any:
    """A JSON-ready Python scalar for numpy / jax scalars (NaN and inf are kept as JSON extensions)."""
    return value.item() if hasattr(value, "item") else value


class JsonlFile:
    """An append-only file of JSON records, each flushed as it is written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115  (closed in close())

    def write(self, record: Mapping[str, Any]) -> None:
        self._file.write(json.dumps({k: _plain(v) for k, v in record.items()}) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class RunLogger:
    """Sends each record to the local files and to wandb; `close(status)` ends the run."""

    def __init__(
        self,
        run_dir: Path,
        wandb_cfg: WandbConfig,
        config: Mapping[str, Any],
        many: bool = False,
    ) -> None:
        """`many`: this process keeps several runs open at once (a batch), each its own wandb run."""
        self.run_dir = run_dir
        self.last_step = 0
        self._wandb = _start_wandb(run_dir, wandb_cfg, config, many)
        self._metrics = JsonlFile(run_dir / METRICS_FILE)
        self._perf = JsonlFile(run_dir / PERF_FILE)

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        self.last_step = step
        metrics = {k: _plain(v) for k, v in metrics.items()}
        local = {k: v for k, v in metrics.items() if not k.startswith(PERF_PREFIX)}
        perf = {k: v for k, v in metrics.items() if k.startswith(PERF_PREFIX)}
        if local:
            self._metrics.write({"step": step, **local})
        if perf:
            self._perf.write({"step": step, **perf})
        if self._wandb is not None:
            self._wandb.log(metrics, step=step)

    def close(self, status: str, step: int, error: str | None = None) -> None:
        """Write status.json (finished / diverged / failed / killed) and finish the wandb run."""
        self._metrics.close()
        self._perf.close()
        write_status(self.run_dir, status, step, error)
        if self._wandb is not None:
            self._wandb.finish(exit_code=0 if status == "finished" else 1)


def write_status(run_dir: Path, status: str, step: int, error: str | None = None) -> None:
    """Write `status.json` atomically (a temporary file renamed over it): a reader sees the old
    status or the new one, never half of one."""
    record: dict[str, Any] = {"status": status, "step": step}
    if error is not None:
        record["error"] = error
    tmp = run_dir / f".{STATUS_FILE}.tmp"
    tmp.write_text(json.dumps(record) + "\n", encoding="utf-8")
    os.replace(tmp, run_dir / STATUS_FILE)


def _start_wandb(run_dir: Path, cfg: WandbConfig, config: Mapping[str, Any], many: bool) -> Any:
    """One wandb run per job; None when disabled."""
    if cfg.mode == "disabled":
        return None
    import wandb  # imported here: a disabled run never pays for it

    return wandb.init(
        project=cfg.project,
        entity=cfg.entity,
        group=cfg.group,
        tags=list(cfg.tags),
        config=dict(config),
        mode=cfg.mode,
        dir=str(run_dir),
        reinit="create_new" if many else "finish_previous",
        settings=wandb.Settings(quiet=True, console="off"),
    )
