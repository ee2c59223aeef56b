"""Loading runs: from run directories on disk (see docs/run-files.md) or from a wandb project.

The result is a `RunSet` of three pandas frames:

- `RunSet.runs`: one row per run: `run_id`, `run_path`, `source` (`local` / `wandb`), `status`
  (`STATUSES`: `finished`, `diverged`, `failed`, `killed`, `preempted`; wandb may also say
  `running`), `partial` (status is not `finished`), `error` (the one-line error of status.json),
  `status_step` (step in status.json), `last_step` (last logged step), `n_rows`, `skipped_lines`
  (corrupt / half-written lines of metrics.jsonl that were skipped), `n_nonfinite` (NaN / ±inf
  values it logged), `elapsed_s` (last `perf/elapsed_s`), every leaf of the run's resolved config
  flattened into a column (see `flatten_config`), and the last finite logged value of every metric
  (column named by the metric key, e.g. `eval/return_mean`).
- `RunSet.metrics`: the tidy frame, one row per run and logged step: `run_id`, `step`, the config
  columns that identify a run (`KEY_COLUMNS` present in any run, plus every config column whose
  value differs between the loaded runs; constant ones are in `runs`), then one column per metric
  key. Records logged at the same step are merged into one row; a key logged twice at the same step
  (e.g. two episodes ending at one step) gives a second row at that step rather than being lost.
  Its values are finite: NaN there means "no finite value logged".
- `RunSet.nonfinite`: every NaN / ±inf value a run logged, one row each: `run_id`, `step`, `key`,
  `value` (usually empty: a run that diverges stops at its last finite records, but older runs and
  hand-written files may hold some). They are kept apart so that a logged NaN is not mistaken for a
  key that was not logged, and so that no mean over `metrics` can meet one.

A run directory is a directory holding `config.yaml` or `metrics.jsonl`; any mix of run directories
and directories containing them (Hydra multirun dirs, `outputs/`, ...) is searched recursively,
without descending into run directories, `.hydra/`, `wandb/` or hidden directories.

Parsed metrics files are cached as parquet (one file per run, keyed on the metrics file's path, size
and modification time), so loading a sweep a second time reads only columnar files.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
STATUS_FILE = "status.json"
PERF_FILE = "perf.jsonl"
SKIP_DIRS = frozenset({".hydra", "wandb", "__pycache__"})
#: What status.json can say (see docs/run-files.md); every status but `finished` is partial.
STATUSES = ("finished", "diverged", "failed", "killed", "preempted")

#: Config columns that identify a run; always carried into the tidy frame when present.
KEY_COLUMNS = (
    "env", "env.id", "network", "n_step", "gamma", "tau", "operator", "double", "entropy_bonus",
    "seed", "lr", "total_steps",
)
#: Renamed flattened keys: `env.name` → `env`, `network.name` → `network`.
RENAMES = {"env.name": "env", "network.name": "network"}
#: Per-run columns that are not config or metrics.
META_COLUMNS = (
    "run_id", "run_path", "source", "status", "partial", "error", "status_step", "last_step",
    "n_rows", "skipped_lines", "n_nonfinite", "elapsed_s",
)
#: Columns of one run's non-finite values (`RunSet.nonfinite` adds `run_id` in front).
NONFINITE_COLUMNS = ("step", "key", "value")
_NONFINITE_DTYPES = {"run_id": object, "step": np.int64, "key": object, "value": np.float64}
CACHE_VERSION = "2"


class AnalysisError(Exception):
    """A problem with the input that the user must fix; its message is one line."""


class AnalysisWarning(UserWarning):
    """Something the user should know about the input (a skipped line, a partial run, ...)."""


def warn(message: str) -> None:
    """Emit an `AnalysisWarning` (the CLI prints these one per line)."""
    warnings.warn(message, AnalysisWarning, stacklevel=2)


def nonfinite_frame(rows: Iterable[Sequence[Any]] = (), *, run_id: bool = False) -> pd.DataFrame:
    """A frame of non-finite values from (step, key, value) rows (with `run_id` first if `run_id`)."""
    columns = ["run_id", *NONFINITE_COLUMNS] if run_id else list(NONFINITE_COLUMNS)
    values = list(zip(*rows, strict=True)) or [()] * len(columns)
    return pd.DataFrame({c: np.array(v, dtype=_NONFINITE_DTYPES[c])
                         for c, v in zip(columns, values, strict=True)})


@dataclass
class RunSet:
    """Loaded runs: `runs` (one row per run), `metrics` (one row per run and step, finite values)
    and `nonfinite` (every NaN / ±inf logged: run_id, step, key, value)."""

    runs: pd.DataFrame
    metrics: pd.DataFrame
    config_columns: list[str] = field(default_factory=list)
    nonfinite: pd.DataFrame = field(default_factory=lambda: nonfinite_frame(run_id=True))

    @property
    def metric_columns(self) -> list[str]:
        """Logged metric keys (`prefix/name`) present in `metrics`."""
        return [c for c in self.metrics.columns if "/" in c]

    def logged(self, key: str) -> bool:
        """Whether any run logged at least one value of `key`."""
        return key in self.metrics.columns and bool(self.metrics[key].notna().any())


# ----------------------------------------------------------------------------------------- configs


def flatten_config(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten a nested config into `{dotted.key: leaf}`.

    `env.name` becomes `env` and `network.name` becomes `network`; lists become their JSON text (so
    that they can be compared and grouped); keys starting with `_` (e.g. wandb's `_wandb`) are
    dropped.
    """
    flat: dict[str, Any] = {}
    for key, value in cfg.items():
        if str(key).startswith("_"):
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_config(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            flat[name] = json.dumps(list(value))
        else:
            flat[name] = value
    if not prefix:
        flat = {RENAMES.get(k, k): v for k, v in flat.items()}
    return flat


def read_config(run_dir: Path) -> dict[str, Any]:
    """The run's resolved config, flattened: `config.yaml`, else (with a warning)
    `.hydra/config.yaml` (which may hold unresolved interpolations), else `{}` with a warning."""
    import yaml

    for path in (run_dir / CONFIG_FILE, run_dir / ".hydra" / CONFIG_FILE):
        if not path.is_file():
            continue
        if path.parent.name == ".hydra":
            warn(f"{run_dir}: no {CONFIG_FILE}; using .hydra/{CONFIG_FILE}")
        try:
            cfg = yaml.load(path.read_text(), Loader=_yaml_loader()) or {}
        except yaml.YAMLError as exc:
            warn(f"{path}: unreadable YAML ({_one_line(exc)}); config ignored")
            return {}
        if not isinstance(cfg, Mapping):
            warn(f"{path}: not a mapping; config ignored")
            return {}
        return flatten_config(cfg)
    warn(f"{run_dir}: no {CONFIG_FILE}; its config is unknown")
    return {}


def _yaml_loader() -> Any:
    """libyaml's safe loader when available (much faster), else the pure-Python one."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# ----------------------------------------------------------------------------------------- metrics


def parse_jsonl(path: Path) -> tuple[pd.DataFrame, list[str], pd.DataFrame]:
    """Parse a metrics file into a frame (one row per valid line, file order), the problems met,
    and the non-finite values logged (`nonfinite_frame`: step, key, value).

    A line that is not a JSON object with a numeric `step` is skipped (the last line of a killed run
    may be cut short). Values are converted to float64 (non-numbers become NaN); `step` to int64.
    A logged NaN or ±inf goes to the non-finite frame and is NaN in the frame, like a key the line
    did not log. Parsed by pyarrow when every line is valid, else line by line.
    """
    raw = path.read_bytes()
    problems: list[str] = []
    if raw and not raw.endswith(b"\n"):
        head, _, last = raw.rpartition(b"\n")
        if _record(last) is None:
            problems.append(f"{path}: skipped a half-written last line")
            raw = head + b"\n" if head else b""
    if not raw.strip():
        return _coerce(pd.DataFrame({"step": []})), problems, nonfinite_frame()
    try:
        frame, nonfinite = _parse_arrow(raw)
    except ValueError:  # pyarrow's ArrowInvalid is a ValueError
        frame, corrupt, nonfinite = _parse_lines(raw, path)
        problems.extend(corrupt)
    return _coerce(frame), problems, nonfinite


def _record(line: bytes) -> dict[str, Any] | None:
    """The JSON object on `line` if it is one with a numeric `step`, else None."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) and _is_step(record.get("step")) else None


def _parse_arrow(raw: bytes) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All lines at once with pyarrow: (frame, non-finite values); raises ValueError if any line is
    not a record with a step."""
    import pyarrow.json as pj

    table = pj.read_json(io.BytesIO(raw), read_options=pj.ReadOptions(block_size=1 << 22))
    frame = table.to_pandas()
    if "step" not in frame.columns or not pd.api.types.is_numeric_dtype(frame["step"]):
        raise ValueError("no numeric step column")
    if not np.isfinite(frame["step"].to_numpy(dtype="float64")).all():
        raise ValueError("a line without a step")
    return frame, _nonfinite_in_table(table)


def _nonfinite_in_table(table: Any) -> pd.DataFrame:
    """(step, key, value) of every NaN / ±inf in the float columns of a pyarrow table (a key a line
    did not log is null there, not NaN)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    parts = []
    for name in table.column_names:
        column = table.column(name)
        if name == "step" or not pa.types.is_floating(column.type):
            continue
        bad = pc.fill_null(pc.invert(pc.is_finite(column)), False)
        if pc.any(bad).as_py():
            steps = pc.filter(table.column("step"), bad).to_numpy(zero_copy_only=False)
            values = pc.filter(column, bad).to_numpy(zero_copy_only=False)
            parts.extend(zip(steps, [name] * len(steps), values, strict=True))
    return nonfinite_frame(parts)


def nonfinite_in_records(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """(step, key, value) of every NaN / ±inf float in `records` (each a record with a `step`)."""
    return nonfinite_frame(
        (record["step"], key, value)
        for record in records
        for key, value in record.items()
        if key != "step" and isinstance(value, float) and not math.isfinite(value)
    )



def _parse_lines(raw: bytes, path: Path) -> tuple[pd.DataFrame, list[str], pd.DataFrame]:
    """Line by line, skipping (and reporting) lines that are not records with a step: (frame,
    problems, non-finite values)."""
    records, problems = [], []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        record = _record(line)
        if record is None:
            problems.append(f"{path}:{number}: skipped a corrupt line")
        else:
            records.append(record)
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame({"step": []})
    return frame, problems, nonfinite_in_records(records)


def _is_step(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _coerce(frame: pd.DataFrame) -> pd.DataFrame:
    """`step` as int64, every other column as finite float64 (bools → 0/1, NaN / ±inf and other
    non-numbers → NaN)."""
    out = {"step": frame["step"].astype("int64")}
    for column in frame.columns:
        if column == "step":
            continue
        values = frame[column]
        if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
            values = values.map(_number, na_action="ignore")
        values = values.astype("float64")
        out[column] = values.where(np.isfinite(values.to_numpy()))
    return pd.DataFrame(out)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else math.nan


def merge_steps(frame: pd.DataFrame) -> pd.DataFrame:
    """Merge records that share a step into one row, sorted by step.

    Where a key appears more than once at one step, its k-th occurrence goes to the k-th row of that
    step (so nothing is lost); other keys of that step go to its first row.
    """
    if frame.empty or frame["step"].is_unique:
        return frame.sort_values("step", kind="stable").reset_index(drop=True)
    values = frame.drop(columns="step")
    if values.shape[1] == 0:
        return frame.drop_duplicates("step").sort_values("step").reset_index(drop=True)
    counts = values.notna().groupby(frame["step"].to_numpy()).sum()
    clash = counts.index[counts.to_numpy().max(axis=1) > 1]
    clean = frame[~frame["step"].isin(clash)]
    merged = clean.groupby("step", sort=True).first().reset_index()
    if len(clash):
        long = frame[frame["step"].isin(clash)].melt(id_vars="step", var_name="key").dropna()
        long["occurrence"] = long.groupby(["step", "key"]).cumcount()
        wide = long.pivot_table(
            index=["step", "occurrence"], columns="key", values="value", aggfunc="first"
        ).reset_index()
        wide.columns.name = None
        merged = pd.concat([merged, wide.drop(columns="occurrence")], ignore_index=True)
        merged = merged.sort_values("step", kind="stable").reset_index(drop=True)
    return merged[frame.columns]


def read_metrics(path: Path, cache_dir: Path | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`metrics.jsonl` parsed and merged by step (see `merge_steps`), and its non-finite values
    (see `parse_jsonl`), through the parquet cache.

    Skipped lines are reported as warnings, also when read from the cache. The frame's
    `attrs["skipped_lines"]` holds their number.
    """
    stat = path.stat()
    key = {"version": CACHE_VERSION, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    cached = _cache_read(cache_dir, path, key) if cache_dir is not None else None
    if cached is not None:
        frame, problems, nonfinite = cached
    else:
        parsed, problems, nonfinite = parse_jsonl(path)
        frame = merge_steps(parsed)
        if cache_dir is not None:
            _cache_write(cache_dir, path, key, frame, problems, nonfinite)
    for problem in problems:
        warn(problem)
    frame.attrs["skipped_lines"] = len(problems)
    return frame, nonfinite


def _cache_file(cache_dir: Path, path: Path) -> Path:
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:24]
    return cache_dir / f"{digest}.parquet"


def _cache_read(
    cache_dir: Path, path: Path, key: dict[str, Any]
) -> tuple[pd.DataFrame, list[str], pd.DataFrame] | None:
    import pyarrow.parquet as pq

    file = _cache_file(cache_dir, path)
    try:
        meta = pq.read_schema(file).metadata or {}
        if json.loads(meta.get(b"softq.key", b"null")) != key:
            return None
        problems = json.loads(meta[b"softq.problems"])
        nonfinite = nonfinite_frame(json.loads(meta[b"softq.nonfinite"]))
        frame = pq.read_table(file).to_pandas()
    except (OSError, ValueError, KeyError):
        return None
    frame.attrs = {}
    return frame, problems, nonfinite


def _cache_write(
    cache_dir: Path, path: Path, key: dict[str, Any], frame: pd.DataFrame, problems: list[str],
    nonfinite: pd.DataFrame,
) -> None:
    """Best effort: a cache that cannot be written is silently skipped."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    file = _cache_file(cache_dir, path)
    tmp = file.with_suffix(f".{os.getpid()}.tmp")
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        meta = dict(table.schema.metadata or {})
        meta[b"softq.key"] = json.dumps(key).encode()
        meta[b"softq.problems"] = json.dumps(problems).encode()
        rows = [[int(s), str(k), float(v)] for s, k, v in nonfinite.itertuples(index=False)]
        meta[b"softq.nonfinite"] = json.dumps(rows).encode()  # JSON with NaN, Infinity tokens
        pq.write_table(table.replace_schema_metadata(meta), tmp)
        os.replace(tmp, file)
    except OSError:
        tmp.unlink(missing_ok=True)


def default_cache_dir() -> Path:
    """`$SOFTQ_LAB_CACHE`, else `$XDG_CACHE_HOME/softq-lab/metrics`, else
    `~/.cache/softq-lab/metrics`."""
    if os.environ.get("SOFTQ_LAB_CACHE"):
        return Path(os.environ["SOFTQ_LAB_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "softq-lab" / "metrics"


# ------------------------------------------------------------------------------- status and perf


def read_status(run_dir: Path) -> tuple[str, str | None, float]:
    """(status, error, step) of a run.

    `status.json` says `finished`, `diverged` (a learner metric went non-finite) or `failed` (with
    `error`), `killed` (SIGINT / SIGTERM) or `preempted` (SIGUSR1 / SIGUSR2, a cluster preemption);
    no `status.json` means the run was killed without notice (or is still running). An unreadable
    `status.json` is reported and treated as killed; a status not in `STATUSES` is reported.
    """
    path = run_dir / STATUS_FILE
    if not path.is_file():
        return "killed", None, math.nan
    try:
        status = json.loads(path.read_text())
        name = str(status["status"])
    except (ValueError, KeyError, TypeError):
        warn(f"{path}: unreadable; the run is treated as killed")
        return "killed", None, math.nan
    if name not in STATUSES:
        warn(f"{path}: unknown status {name!r}")
    error = status.get("error")
    step = status.get("step")
    return name, None if error is None else str(error), float(step) if _is_step(step) else math.nan


def read_elapsed(run_dir: Path) -> float:
    """The last `perf/elapsed_s` in `perf.jsonl` (NaN if none), read from the file's tail."""
    path = run_dir / PERF_FILE
    if not path.is_file():
        return math.nan
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - 8192))
        tail = f.read().split(b"\n")
    for line in reversed(tail):
        try:
            value = json.loads(line).get("perf/elapsed_s")
        except (ValueError, AttributeError):
            continue
        if _is_step(value):
            return float(value)
    return math.nan


# -------------------------------------------------------------------------------------- discovery


def is_run_dir(path: Path) -> bool:
    """A run directory holds `config.yaml` or `metrics.jsonl`."""
    return (path / CONFIG_FILE).is_file() or (path / METRICS_FILE).is_file()


def is_job_stub(path: Path) -> bool:
    """A job directory that is not a run: `status.json` without `config.yaml` or `metrics.jsonl`
    (a sweep job whose config was rejected leaves only that and `.hydra/`)."""
    return (path / STATUS_FILE).is_file() and not is_run_dir(path)


def report_job_stub(path: Path) -> str:
    """Warn, in one line naming `path`, its status and error, that the job directory is not a run;
    returns its status."""
    status, error, _ = read_status(path)
    why = f": {' '.join(error.split())}" if error else ""
    warn(f"{path}: not a run (status {status}, no {CONFIG_FILE} or {METRICS_FILE}){why}")
    return status


def find_runs(path: str | Path) -> list[Path]:
    """Every run directory at or below `path` (naturally sorted: job 2 before job 10); each job
    directory that is not a run (`is_job_stub`) is reported and skipped.

    Raises `AnalysisError` naming `path` if it does not exist, is empty, or holds no run.
    """
    root = Path(path)
    if not root.exists():
        raise AnalysisError(f"{root}: no such file or directory")
    if root.is_file():
        if root.name in (CONFIG_FILE, METRICS_FILE, STATUS_FILE) and is_run_dir(root.parent):
            return [root.parent]
        raise AnalysisError(f"{root}: not a run directory (expected a directory with {CONFIG_FILE}"
                            f" or {METRICS_FILE})")
    found: list[Path] = []
    stub_statuses: list[str] = []
    for dirpath, dirnames, _ in os.walk(root):
        here = Path(dirpath)
        if is_run_dir(here):
            found.append(here)
            dirnames[:] = []
            continue
        if is_job_stub(here):
            stub_statuses.append(report_job_stub(here))
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")]
    if not found:
        if not any(root.iterdir()):
            raise AnalysisError(f"{root}: empty directory, no runs to analyse")
        if stub_statuses:
            counts = ", ".join(f"{n} {s}" for s, n in Counter(stub_statuses).items())
            raise AnalysisError(
                f"{root}: no runs found, only {len(stub_statuses)} job dir(s) with a {STATUS_FILE} "
                f"but no {CONFIG_FILE} or {METRICS_FILE} ({counts}; see the warnings)")
        raise AnalysisError(f"{root}: no runs found (a run directory holds {CONFIG_FILE} or "
                            f"{METRICS_FILE})")
    return sorted(found, key=_natural_key)


def _natural_key(path: Path) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def run_ids(paths: list[Path]) -> list[str]:
    """Short unique ids: each path relative to the parent of the paths' common directory."""
    resolved = [p.resolve() for p in paths]
    common = Path(os.path.commonpath(resolved)) if resolved else Path()
    base = common.parent
    return [str(p.relative_to(base)) for p in resolved]


# ------------------------------------------------------------------------------------ assembling


def load_run(
    run_dir: Path, run_id: str, cache_dir: Path | None
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """One run: its row of the runs frame (meta + config), its merged metrics frame and its
    non-finite values."""
    metrics_path = run_dir / METRICS_FILE
    if metrics_path.is_file():
        metrics, nonfinite = read_metrics(metrics_path, cache_dir)
    else:
        metrics = pd.DataFrame({"step": pd.Series([], dtype="int64")})
        metrics.attrs["skipped_lines"] = 0
        nonfinite = nonfinite_frame()
    status, error, status_step = read_status(run_dir)
    row: dict[str, Any] = {
        "run_id": run_id,
        "run_path": str(run_dir.resolve()),
        "source": "local",
        "status": status,
        "error": error,
        "status_step": status_step,
        "skipped_lines": metrics.attrs.get("skipped_lines", 0),
        "elapsed_s": read_elapsed(run_dir),
    }
    row.update(_prefix_clashes(read_config(run_dir)))
    return row, metrics, nonfinite


def _prefix_clashes(config: dict[str, Any]) -> dict[str, Any]:
    """Config keys that clash with a meta column get a `config.` prefix."""
    return {f"config.{k}" if k in META_COLUMNS else k: v for k, v in config.items()}


def load_runs(
    paths: Iterable[str | Path], *, cache: bool = True, cache_dir: str | Path | None = None
) -> RunSet:
    """Load every run at or below `paths` (run dirs, Hydra multirun dirs, any mix; duplicates once).

    `cache=False` reads every metrics file afresh; `cache_dir` defaults to `default_cache_dir()`.
    Raises `AnalysisError` (one line, naming the path) for a path that holds no run.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    dirs: list[Path] = []
    seen: set[Path] = set()
    for path in paths:
        for run_dir in find_runs(path):
            if run_dir.resolve() not in seen:
                seen.add(run_dir.resolve())
                dirs.append(run_dir)
    if not dirs:
        raise AnalysisError("no run directories given")
    directory = None
    if cache:
        directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    rows, frames, nonfinite = [], [], []
    for run_dir, run_id in zip(dirs, run_ids(dirs), strict=True):
        row, frame, bad = load_run(run_dir, run_id, directory)
        rows.append(row)
        frames.append(frame)
        nonfinite.append(bad)
    return build_runset(rows, frames, nonfinite)


def build_runset(
    rows: list[dict[str, Any]], frames: list[pd.DataFrame], nonfinite: list[pd.DataFrame]
) -> RunSet:
    """Assemble per-run rows (meta + flattened config), metrics frames and non-finite values into a
    `RunSet`."""
    meta = set(META_COLUMNS)
    config_columns = _ordered_config_columns(
        dict.fromkeys(k for row in rows for k in row if k not in meta)
    )
    runs = pd.DataFrame.from_records(rows)
    for column in META_COLUMNS:
        if column not in runs.columns:
            runs[column] = np.nan
    runs["n_rows"] = [len(f) for f in frames]
    runs["n_nonfinite"] = [len(f) for f in nonfinite]
    runs["last_step"] = [f["step"].max() if len(f) else np.nan for f in frames]
    runs["partial"] = runs["status"] != "finished"
    lengths = np.array([len(f) for f in frames])
    nonempty = [f for f in frames if len(f)]
    if nonempty:
        metrics = pd.concat(nonempty, ignore_index=True, sort=False)
    else:
        metrics = pd.DataFrame({"step": pd.Series([], dtype="int64")})
    metrics.attrs = {}
    metrics.insert(0, "run_id", np.repeat(runs["run_id"].to_numpy(), lengths))
    metric_columns = sorted(c for c in metrics.columns if c not in ("run_id", "step"))
    metrics = metrics[["run_id", "step", *metric_columns]]
    last = metrics.groupby("run_id", sort=False)[metric_columns].last()
    runs = runs[list(META_COLUMNS) + config_columns]
    runs = runs.join(last, on="run_id")
    bad = [f.assign(run_id=run_id)
           for f, run_id in zip(nonfinite, runs["run_id"], strict=True) if len(f)]
    return _assemble(runs, metrics, config_columns, _concat_nonfinite(bad))


def _concat_nonfinite(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """One `RunSet.nonfinite` frame (run_id, step, key, value) from several."""
    empty = nonfinite_frame(run_id=True)
    frames = [f[empty.columns] for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else empty


def _ordered_config_columns(columns: Iterable[str]) -> list[str]:
    columns = list(columns)
    keys = [c for c in KEY_COLUMNS if c in columns]
    return keys + sorted(c for c in columns if c not in keys)


def _strip_config(metrics: pd.DataFrame, config_columns: list[str]) -> pd.DataFrame:
    return metrics.drop(columns=[c for c in config_columns if c in metrics.columns])


def _assemble(runs: pd.DataFrame, metrics: pd.DataFrame, config_columns: list[str],
              nonfinite: pd.DataFrame) -> RunSet:
    """Attach to `metrics` the config columns that identify a run (see module docstring)."""
    carried = [
        c for c in config_columns
        if c in KEY_COLUMNS or runs[c].astype("string").nunique(dropna=False) > 1
    ]
    codes = pd.Index(runs["run_id"]).get_indexer(metrics["run_id"])
    attached = {c: runs[c].to_numpy()[codes] for c in carried}
    front = metrics[["run_id", "step"]].reset_index(drop=True)
    rest = metrics.drop(columns=["run_id", "step"]).reset_index(drop=True)
    tidy = pd.concat([front, pd.DataFrame(attached), rest], axis=1)
    return RunSet(runs=runs.reset_index(drop=True), metrics=tidy, config_columns=config_columns,
                  nonfinite=nonfinite)


def combine(*sets: RunSet) -> RunSet:
    """One `RunSet` from several (e.g. local dirs and a wandb project); run ids must be unique."""
    runs = pd.concat([s.runs for s in sets], ignore_index=True, sort=False)
    if runs["run_id"].duplicated().any():
        dupes = sorted(runs.loc[runs["run_id"].duplicated(), "run_id"].astype(str))
        raise AnalysisError(f"duplicate run ids: {', '.join(dupes[:5])}")
    config_columns = _ordered_config_columns(
        dict.fromkeys(c for s in sets for c in s.config_columns)
    )
    metrics = pd.concat(
        [_strip_config(s.metrics, s.config_columns) for s in sets], ignore_index=True, sort=False
    )
    metric_columns = sorted(c for c in metrics.columns if c not in ("run_id", "step"))
    metrics = metrics[["run_id", "step", *metric_columns]]
    last_columns = sorted({c for s in sets for c in s.runs.columns if "/" in c})
    runs = runs[list(META_COLUMNS) + config_columns + last_columns]
    return _assemble(runs, metrics, config_columns, _concat_nonfinite(s.nonfinite for s in sets))


# ------------------------------------------------------------------------------------------ wandb


class WandbRunLike(Protocol):
    """What `frame_from_wandb_runs` uses of a `wandb.apis.public.Run`."""

    id: str
    state: str
    config: Mapping[str, Any]

    def scan_history(self) -> Iterable[Mapping[str, Any]]: ...


#: wandb run states → our statuses.
WANDB_STATES = {"finished": "finished", "failed": "failed", "crashed": "failed", "killed": "killed"}


def frame_from_wandb_runs(runs: Iterable[WandbRunLike], project: str) -> RunSet:
    """Build a `RunSet` from wandb public-API run objects (pure: no network of its own).

    History rows give the metrics: the step is the row's `step` key if logged, else wandb's `_step`;
    keys starting with `_` and `perf/` keys are dropped. Status comes from the wandb state
    (`crashed` → failed, `running` stays `running` and counts as partial).
    """
    rows, frames, nonfinite = [], [], []
    for run in runs:
        history = list(_wandb_records(run.scan_history()))
        frame = (
            _coerce(pd.DataFrame.from_records(history)) if history
            else pd.DataFrame({"step": pd.Series([], dtype="int64")})
        )
        frame = merge_steps(frame)
        state = str(getattr(run, "state", "unknown"))
        row: dict[str, Any] = {
            "run_id": f"wandb:{project}/{run.id}",
            "run_path": f"wandb:{project}/{run.id}",
            "source": "wandb",
            "status": WANDB_STATES.get(state, state),
            "error": None,
            "status_step": math.nan,
            "skipped_lines": 0,
            "elapsed_s": math.nan,
        }
        row.update(_prefix_clashes(flatten_config(dict(run.config))))
        rows.append(row)
        frames.append(frame)
        nonfinite.append(nonfinite_in_records(history))
    if not rows:
        raise AnalysisError(f"wandb:{project}: no runs in the project")
    return build_runset(rows, frames, nonfinite)


def _wandb_records(history: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in history:
        step = item.get("step", item.get("_step"))
        if not _is_step(step):
            continue
        record = {k: v for k, v in item.items()
                  if not k.startswith("_") and not k.startswith("perf/") and k != "step"}
        record["step"] = step
        yield record


def load_wandb(project: str, *, api: Any = None, timeout: int = 30) -> RunSet:
    """Load every run of `ENTITY/PROJECT` through the wandb public API (needs network and login).

    Any failure to reach wandb is raised as a one-line `AnalysisError`.
    """
    if project.count("/") != 1 or not all(project.split("/")):
        raise AnalysisError(f"--wandb {project!r}: expected ENTITY/PROJECT")
    try:
        if api is None:
            import wandb

            api = wandb.Api(timeout=timeout)
        runs = list(api.runs(project))
        return frame_from_wandb_runs(runs, project)
    except AnalysisError:
        raise
    except Exception as exc:  # wandb raises many types (usage, HTTP, connection): all fatal here.
        raise AnalysisError(f"cannot load wandb project {project}: {_one_line(exc)}") from exc


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
