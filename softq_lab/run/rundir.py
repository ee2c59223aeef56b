"""Whether a job may write into its run dir: it must be writable; a new run needs an empty one;
`resume=true` needs the same config as the run already there.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from softq_lab.run.checkpoint import CHECKPOINT_DIR
from softq_lab.run.config import ConfigError
from softq_lab.run.loggers import CONFIG_FILE, METRICS_FILE, STATUS_FILE

RUN_FILES = (CONFIG_FILE, METRICS_FILE, STATUS_FILE, CHECKPOINT_DIR)
# May differ between a run and its resumption: they do not change what the run computes.
NOT_COMPARED = ("resume", "logger.progress", "logger.wandb.mode", "logger.wandb.group")


def existing_run(run_dir: Path) -> str | None:
    """A few words on the run `run_dir` already holds (its status), or None if it holds none."""
    if not any((run_dir / name).exists() for name in RUN_FILES):
        return None
    try:
        status = json.loads((run_dir / STATUS_FILE).read_text(encoding="utf-8"))["status"]
    except (OSError, ValueError, KeyError, TypeError):
        status = "unfinished"
    return f"status {status}"


def _flat(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flat(value, name + "."))
        else:
            flat[name] = value
    return flat


def config_difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    """The first key whose value differs between two resolved configs, as `key=old -> new`."""
    a, b = _flat(old), _flat(new)
    for key in sorted(set(a) | set(b)):
        if key in NOT_COMPARED:
            continue
        if a.get(key) != b.get(key):
            return f"{key}={a.get(key)!r} there, {b.get(key)!r} now"
    return None


def check(run_dir: Path, resolved: Mapping[str, Any], resume: bool, dir_key: str) -> None:
    """ConfigError unless the job may write into `run_dir` (`dir_key`: the Hydra key that chose it).

    Without `resume`, `run_dir` must hold no run; with it, a run there must have the same config."""
    found = existing_run(run_dir)
    if found is None:
        return
    if not resume:
        raise ConfigError(
            f"{dir_key}={run_dir}: already holds a run ({found}); continue it with resume=true, "
            f"or write elsewhere with another {dir_key}"
        )
    config_file = run_dir / CONFIG_FILE
    if not config_file.exists():
        return  # it never got past validation: a new start
    old = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
    difference = config_difference(old, resolved)
    if difference is not None:
        raise ConfigError(
            f"resume=true: the run in {run_dir} has another config ({difference}); "
            "resume it with its own settings, or write elsewhere"
        )


def check_writable(key: str, path: Path) -> None:
    """ConfigError unless `path` is, or can be made as, a writable directory. Nothing is created:
    the nearest existing ancestor must be a directory this process may write into."""
    existing = path.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{key}={path}: cannot be a directory ({existing} is a file)")
    if not os.access(existing, os.W_OK | os.X_OK):  # also false on a read-only file system
        raise ConfigError(f"{key}={path}: cannot write into {existing}; choose another {key}")


class WritableOutputDir(Callback):
    """`hydra.callbacks.writable_output_dir`: before Hydra makes the run's or the sweep's output dir,
    check it can; one line and exit 2 instead of Hydra's traceback."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check("hydra.run.dir", Path(str(config.hydra.run.dir)))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check("hydra.sweep.dir", Path(str(config.hydra.sweep.dir)))

    @staticmethod
    def _check(key: str, path: Path) -> None:
        try:
            check_writable(key, path)
        except ConfigError as err:
            print(f"softq-train: error: {err}", file=sys.stderr)
            sys.exit(2)
