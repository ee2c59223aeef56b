"""Where a run's numbers go: a local line-per-record file and wandb, under the same names.

`metrics.jsonl` gets one JSON object per record, `{"step": ..., "<prefix>/<name>": ...}`, appended and
flushed at once, so a killed run keeps everything logged before the kill; a record is written whole or
not at all (a failed write, e.g. on a full disk, is cut back off before the error goes on). Timing
(`perf/...`) goes to `perf.jsonl` instead, so that `metrics.jsonl` is identical for the same config
and seed. wandb gets every record (offline by default: no account, no network), with its files inside
the run's directory; its run id is kept in `wandb-id`, so a resumed run continues the same wandb run.
"""

from __future__ import annotations

import json
import os
import secrets
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from softq_lab.run.config import WandbConfig

METRICS_FILE = "metrics.jsonl"
PERF_FILE = "perf.jsonl"
STATUS_FILE = "status.json"
CONFIG_FILE = "config.yaml"
WANDB_ID_FILE = "wandb-id"
PERF_PREFIX = "perf/"
STEP = "step"  # the env step: the records' x-axis, in metrics.jsonl and in wandb
EVAL_RETURN = "eval/return_mean"  # in every evaluation record
JOB_TYPE = "train"


def _plain(value: Any) -> Any:
    """A JSON-ready Python scalar for numpy / jax scalars (NaN and inf are kept as JSON extensions)."""
    return value.item() if hasattr(value, "item") else value


class JsonlFile:
    """An append-only file of JSON records, each written whole (unbuffered) as it comes.

    `size` is the length of the complete records; `rewind(size)` cuts the file back to it (a resumed
    run continues from its checkpoint's position)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115  (closed in close())
        self.size = self._file.seek(0, os.SEEK_END)

    def write(self, record: Mapping[str, Any]) -> None:
        line = (json.dumps({k: _plain(v) for k, v in record.items()}) + "\n").encode()
        try:
            written = 0
            while written < len(line):
                written += self._file.write(line[written:])
        except OSError:
            self.rewind(self.size)  # no cut record left behind
            raise
        self.size += len(line)

    def rewind(self, size: int) -> None:
        self._file.truncate(size)
        self._file.seek(size)
        self.size = size

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
        resume: bool = False,
    ) -> None:
        """`many`: this process keeps several runs open at once (a batch), each its own wandb run.
        `resume`: continue the run dir's wandb run (its files are cut back with `rewind`)."""
        self.run_dir = run_dir
        self.last_step = 0
        self.last_evaluation: dict[str, Any] = {}
        self._metrics = JsonlFile(run_dir / METRICS_FILE)
        self._perf = JsonlFile(run_dir / PERF_FILE)
        self._wandb = _start_wandb(run_dir, wandb_cfg, config, many, resume)

    def offsets(self) -> dict[str, int]:
        """Where the local files stand (saved with a checkpoint)."""
        return {"metrics": self._metrics.size, "perf": self._perf.size}

    def rewind(self, offsets: Mapping[str, int]) -> None:
        """Cut the local files back to `offsets` (a checkpoint's), dropping what came after."""
        self._metrics.rewind(offsets["metrics"])
        self._perf.rewind(offsets["perf"])

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        self.last_step = step
        metrics = {k: _plain(v) for k, v in metrics.items()}
        local = {k: v for k, v in metrics.items() if not k.startswith(PERF_PREFIX)}
        perf = {k: v for k, v in metrics.items() if k.startswith(PERF_PREFIX)}
        if local:
            self._metrics.write({"step": step, **local})
        if perf:
            self._perf.write({"step": step, **perf})
        if EVAL_RETURN in metrics:
            self.last_evaluation = metrics
        if self._wandb is not None:
            self._wandb.log({STEP: step, **metrics}, step=step)

    def close(self, status: str, step: int, error: str | None = None) -> None:
        """Write status.json (finished / diverged / failed / killed / preempted) and finish the wandb
        run, its summary holding the status and the last evaluation; on a full disk, as much of
        that as can be written."""
        self._metrics.close()
        self._perf.close()
        try:
            write_status(self.run_dir, status, step, error)
        finally:
            if self._wandb is not None:
                self._wandb.summary.update({"status": status, STEP: step, **self.last_evaluation})
                self._wandb.finish(exit_code=0 if status == "finished" else 1)


def write_status(run_dir: Path, status: str, step: int, error: str | None = None) -> None:
    """Write `status.json` atomically (a temporary file renamed over it): a reader sees the old
    status or the new one, never half of one."""
    record: dict[str, Any] = {"status": status, "step": step}
    if error is not None:
        record["error"] = error
    tmp = run_dir / f".{STATUS_FILE}.tmp"
    try:
        tmp.write_text(json.dumps(record) + "\n", encoding="utf-8")
        os.replace(tmp, run_dir / STATUS_FILE)
    finally:
        tmp.unlink(missing_ok=True)


def _start_wandb(
    run_dir: Path, cfg: WandbConfig, config: Mapping[str, Any], many: bool, resume: bool
) -> Any:
    """One wandb run per job, the same one when the job resumes; None when disabled. Named by the
    job's overrides, grouped by its sweep, `job_type` train; every metric's x-axis is the env step
    (`define_metric`, whatever its prefix: train/, learner/, eval/, overestimation/, exact/, perf/
    and an env's own)."""
    if cfg.mode == "disabled":
        return None
    # wandb's own start-up lines say what the run's summary block says at the end (where the run is,
    # how to sync it); WANDB_SILENT=false brings them back
    os.environ.setdefault("WANDB_SILENT", "true")
    import wandb  # imported here: a disabled run never pays for it

    id_file = run_dir / WANDB_ID_FILE
    if resume and id_file.exists():
        run_id = id_file.read_text(encoding="utf-8").strip()
    else:
        run_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
        id_file.write_text(run_id + "\n", encoding="utf-8")
    run = wandb.init(
        id=run_id,
        resume="allow",
        project=cfg.project,
        entity=cfg.entity,
        group=cfg.group,
        name=cfg.name,
        job_type=JOB_TYPE,
        tags=list(cfg.tags),
        config=dict(config),
        mode=cfg.mode,
        dir=str(run_dir),
        reinit="create_new" if many else "finish_previous",
        settings=wandb.Settings(quiet=True, console="off"),
    )
    run.define_metric(STEP)
    run.define_metric("*", step_metric=STEP)
    return run


def wandb_credentials_found() -> bool:
    """Whether `logger.wandb.mode=online` could log in without asking: an API key in the
    environment or an entry for the wandb host in the netrc file (what `wandb login` writes).
    Read without wandb and without the network."""
    import netrc
    from urllib.parse import urlparse

    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname
    path = os.environ.get("NETRC") or str(Path.home() / ".netrc")
    try:
        return netrc.netrc(path).authenticators(host or "") is not None
    except (OSError, netrc.NetrcParseError):
        return False
