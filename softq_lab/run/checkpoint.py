"""A run's checkpoints: everything it needs to continue, in its own dir, written with orbax.

`<run_dir>/checkpoints/<step>/` holds two items: `state`, the arrays of the driver's state (learner
and target params, optimizer state, replay buffer, every RNG key, the env state of a JAX env), and
`meta`, a JSON record of the host-side rest (counters, the ε / lr schedule position is the step
itself, episode book-keeping, a gymnasium env's snapshot, and the byte length of `metrics.jsonl` and
`perf.jsonl` at that step, so a resumed run truncates them back and continues without a duplicated
or missing row).

Writes are atomic: orbax writes a step into a temporary dir and renames it when complete, so a kill
at any instant (even mid-write) leaves the previous checkpoints usable; the last `keep` are kept.
orbax is imported on first use (it costs ~2 s of start-up).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

CHECKPOINT_DIR = "checkpoints"


class Saved(NamedTuple):
    step: int
    state: Any  # the driver's state, with the structure of the template it was restored into
    meta: dict[str, Any]


class CheckpointMismatch(ValueError):
    """A checkpoint whose arrays do not fit this run's state (another config wrote it)."""


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def to_arrays(tree: Any) -> dict[str, np.ndarray]:
    """The leaves of `tree` as host arrays named by position (typed PRNG keys as their key data)."""
    leaves = jax.tree.leaves(tree)
    leaves = [jax.random.key_data(x) if _is_key(x) else x for x in leaves]
    arrays = {f"{i:05d}": np.asarray(x) for i, x in enumerate(jax.device_get(leaves))}
    return {k: x for k, x in arrays.items() if x.size > 0}  # orbax cannot store empty arrays


def from_arrays(template: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    """`template`'s structure filled with `arrays` (from `to_arrays`); every leaf must match the
    template's shape and dtype."""
    leaves, treedef = jax.tree.flatten(template)
    empty = {f"{i:05d}" for i, x in enumerate(leaves) if np.size(x) == 0 and not _is_key(x)}
    if set(arrays) | empty != {f"{i:05d}" for i in range(len(leaves))}:
        raise CheckpointMismatch(f"{len(arrays)} arrays for a state of {len(leaves)}")
    out = []
    for i, like in enumerate(leaves):
        name = f"{i:05d}"
        x = np.zeros(np.shape(like), np.asarray(like).dtype) if name in empty else arrays[name]
        x = np.asarray(x)
        if _is_key(like):
            x = jax.random.wrap_key_data(x, impl=jax.random.key_impl(like))
            want = jax.random.key_data(like)
            got_shape, got_dtype = jax.random.key_data(x).shape, np.asarray(want).dtype
        else:
            got_shape, got_dtype = x.shape, x.dtype
            want = like
        if got_shape != np.shape(want) or np.dtype(got_dtype) != np.asarray(want).dtype:
            raise CheckpointMismatch(
                f"array {i}: {got_shape} {got_dtype}, expected {np.shape(want)} "
                f"{np.asarray(want).dtype}"
            )
        out.append(x)
    return jax.tree.unflatten(treedef, out)


class Checkpoints:
    """The checkpoints of one run dir: `save(step, state, meta)`, `steps()`, `restore(step, like)`."""

    def __init__(self, run_dir: Path, keep: int = 2) -> None:
        self.directory = Path(run_dir).absolute() / CHECKPOINT_DIR
        self.keep = keep
        self._manager: Any = None

    def _orbax(self) -> Any:
        if self._manager is None:
            import orbax.checkpoint as ocp

            options = ocp.CheckpointManagerOptions(
                max_to_keep=self.keep, enable_async_checkpointing=False, create=True
            )
            self._manager = ocp.CheckpointManager(self.directory, options=options)
        return self._manager

    def steps(self) -> list[int]:
        """The steps of the complete checkpoints, oldest first (none when the dir does not exist)."""
        if not self.directory.is_dir():
            return []
        return sorted(self._orbax().all_steps())

    def save(self, step: int, state: Any, meta: Mapping[str, Any]) -> None:
        import orbax.checkpoint as ocp

        manager = self._orbax()
        manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(to_arrays(state)),
                meta=ocp.args.JsonSave(dict(meta)),
            ),
            force=True,
        )
        manager.wait_until_finished()

    def restore(self, step: int, like: Any) -> Saved:
        """The checkpoint at `step`, its state in the structure of `like`."""
        import orbax.checkpoint as ocp

        saved = self._orbax().restore(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore()),
        )
        return Saved(step, from_arrays(like, saved["state"]), dict(saved["meta"]))

    def close(self) -> None:
        if self._manager is not None:
            self._manager.close()
            self._manager = None


def common_step(checkpoints: list[Checkpoints]) -> int | None:
    """The newest step every run of a batch has a checkpoint at (runs of a batch advance in
    lockstep; a kill while the batch was saving may leave some a step behind), or None."""
    common: set[int] | None = None
    for ckpt in checkpoints:
        steps = set(ckpt.steps())
        common = steps if common is None else common & steps
    return max(common) if common else None


class BatchCheckpoints:
    """A batch's checkpoints and stop requests, as a driver sees them.

    The driver asks `start()` for the step to continue from (None: the beginning), `restore(r, like)`
    for run r's state there, `due(step)` whether to save, `stop` whether a signal asked it to stop,
    and `save(r, step, state, meta)`. Each run's logger is cut back to the restored checkpoint (or
    to empty when a resumed run has none) and its position saved with every checkpoint."""

    def __init__(
        self, run_dirs: list[Path], loggers: list[Any], every: int, keep: int, resume: bool,
        stop: Any = None,
    ) -> None:  # fmt: skip
        self.every, self.resume, self._stop = every, resume, stop
        self.loggers = loggers
        self.runs = [Checkpoints(d, keep) for d in run_dirs]
        self.step: int | None = None

    def start(self) -> int | None:
        if not self.resume:
            return None
        self.step = common_step(self.runs)
        if self.step is None:
            for logger in self.loggers:
                logger.rewind({"metrics": 0, "perf": 0})
        where = "the start (no checkpoint)" if self.step is None else f"step {self.step}"
        which = str(self.runs[0].directory.parent) if len(self.runs) == 1 else f"{len(self.runs)} runs"
        print(f"softq-train: resuming {which} from {where}", file=sys.stderr)
        return self.step

    def restore(self, r: int, like: Any) -> Saved:
        assert self.step is not None
        saved = self.runs[r].restore(self.step, like)
        self.loggers[r].rewind(saved.meta["files"])
        return saved

    def due(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0

    @property
    def stop(self) -> str | None:
        return None if self._stop is None else self._stop.requested

    def save(self, r: int, step: int, state: Any, meta: Mapping[str, Any]) -> None:
        self.runs[r].save(step, state, {**meta, "files": self.loggers[r].offsets()})

    def close(self) -> None:
        for ckpt in self.runs:
            ckpt.close()


class NoCheckpoints(BatchCheckpoints):
    """Neither checkpoints nor stop requests (a driver called directly, e.g. by a benchmark)."""

    def __init__(self) -> None:
        super().__init__([], [], every=0, keep=1, resume=False)
