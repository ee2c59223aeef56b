"""Aggregation over seeds: per-run metrics, per-config statistics, τ versus the hard max, curves.

Per-run metrics (`METRICS`; computed from one run's logged records, sorted by step):

- `final_return`: `eval/return_mean` of the run's last evaluation; if the run logged no evaluation,
  the mean `train/episode_return` over episodes that ended in the last 10% of its logged steps
  (step ≥ 0.9 · last logged step).
- `auc_return`: the area under the `eval/return_mean` curve (trapezoid over steps) divided by the
  span between the first and last evaluation: the step-weighted average return (a single evaluation
  gives its value).
- `final_bias_hard` / `final_bias_soft`: the last logged `overestimation/bias_hard` / `_soft`.
- `avg_bias_hard` / `avg_bias_soft`: the mean of every logged `overestimation/bias_hard` / `_soft`.
- `final_mae_qstar` / `final_mae_fixed_point`: the last logged `exact/mae_qstar` /
  `exact/mae_fixed_point` (envs with a known model only).

Which runs count: finished runs only, plus with `include_partial` the killed, preempted and failed
ones. Diverged runs are never averaged, with or without `include_partial`: they are kept apart
(`Design.diverged`), counted per config (`n_diverged`) and reported in one warning by config. A
config is the tuple of `config keys` (see `config_keys`); at τ = 0 the operator is replaced by
`hard` (every operator is the hard max there), and when two runs share a config and a seed only the
first in load order (paths in natural order: job 2 before job 10) is kept. Seeds of a config are
taken in increasing seed order (then run id).

Non-finite values: a per-run metric is computed from every value the run logged (`RunSet.metrics`
and `RunSet.nonfinite`), so it is NaN / ±inf where the values it depends on are; such a value is
left out of every statistic, with one warning per metric naming the runs (`nonfinite_values`,
`report_nonfinite`). On the step grid of a curve, a run does not count between the finite records
on either side of a non-finite one (`blank_around`).

Statistics (per config and metric, over seeds): `mean`; `iqm` = `scipy.stats.trim_mean(x, 0.25)`;
`ci_low`/`ci_high` and `iqm_ci_low`/`iqm_ci_high` = the 95% percentile bootstrap intervals of the
mean and of the IQM, `scipy.stats.bootstrap` with `n_resamples` resamples and a generator seeded
with `seed` afresh for every interval (so every number is reproducible on its own); NaN with fewer
than two seeds; a table whose intervals rest on fewer than `MIN_SEEDS` seeds says so in one warning
(`report_few_seeds`).

Versus the hard max (per τ > 0, operator and behaviour τ, within a group of configs equal in every
config key except those three and seed; `exploration.tau` null counts as the learner's τ, and when the
group's τ = 0 runs act with several behaviour τ the reference is those acting alike, else the
ε-greedy ones: `hard_reference`): `diff` = mean(x) − mean(y) of the metric's values x at τ and y at
τ = 0 (in the metric's own units, signed); its CI is the percentile bootstrap of that difference
with x and y resampled independently (two samples, `paired=False`); `p_improvement` = the
fraction of pairs (x_i, y_j) in which x_i is better than y_j, ties counting ½, where better means
higher for returns, lower for errors and lower |value| for biases (`Metric.better`), with its
interval `p_improvement_ci_low`/`_high` from the same two-sample bootstrap.
"""

from __future__ import annotations

import fnmatch
import inspect
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.stats

from softq_lab.analysis.load import KEY_COLUMNS, AnalysisError, RunSet, warn

CONFIDENCE = 0.95
N_RESAMPLES = 9999
SEED = 0
#: A CI over fewer seeds than this is reported with a warning: a percentile bootstrap interval over
#: 2-4 values is too narrow (it cannot reach beyond their range) to be trusted.
MIN_SEEDS = 5

#: Config keys left out of a config's identity: the seed, and settings that do not change what a run
#: learns (logging, wandb, Hydra, output locations, devices). Shell-style patterns on column names.
DEFAULT_IGNORE = (
    "seed", "hydra.*", "wandb.*", "logger.*", "eval.every", "*dir", "*_path", "name", "experiment",
    "tags", "notes", "device", "platform",
)
#: Keys a sweep is expected to vary; a config key outside these that varies is reported.
SWEEP_AXES = tuple(k for k in KEY_COLUMNS if k != "seed")
#: The keys that make up a τ comparison within a group: the backup's τ and operator, and the
#: behaviour policy's τ (`exploration.tau`; null means "the learner's τ", so it moves with τ).
BEHAVIOUR_TAU = "exploration.tau"
TAU_KEYS = ("tau", "operator", BEHAVIOUR_TAU)


# ------------------------------------------------------------------------------ per-run metrics


@dataclass
class RunSeries:
    """One run's logged values, sorted by step: `series(key)` = (steps, values) where `key` was
    logged, finite values from `columns` (NaN: not logged) and NaN / ±inf ones from `nonfinite`
    (key → (steps, values)); `last_step` = the run's last logged step (any key)."""

    steps: np.ndarray
    columns: dict[str, np.ndarray]
    nonfinite: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def last_step(self) -> float:
        return float(self.steps.max()) if len(self.steps) else math.nan

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """Every value logged of `key`, finite or not, in step order (at one step, non-finite ones
        last: a metric that went NaN at its last step is NaN there)."""
        steps, values = np.array([]), self.columns.get(key, np.array([]))
        if len(values):
            logged = ~np.isnan(values)
            steps, values = self.steps[logged].astype(float), values[logged]
        if key not in self.nonfinite:
            return steps, values
        bad_steps, bad_values = self.nonfinite[key]
        steps, values = np.concatenate([steps, bad_steps]), np.concatenate([values, bad_values])
        order = np.argsort(steps, kind="stable")
        return steps[order], values[order]


def last_value(run: RunSeries, key: str) -> float:
    """The value of `key` at its last logged step (NaN if never logged)."""
    _, values = run.series(key)
    return float(values[-1]) if len(values) else math.nan


def mean_value(run: RunSeries, key: str) -> float:
    """The mean over every logged value of `key` (NaN if never logged)."""
    _, values = run.series(key)
    return float(values.mean()) if len(values) else math.nan


def final_return(run: RunSeries) -> float:
    """The last `eval/return_mean`; without evaluations, the mean `train/episode_return` over
    episodes ending at step ≥ 0.9 · (last logged step of the run)."""
    if len(run.series("eval/return_mean")[1]):
        return last_value(run, "eval/return_mean")
    steps, returns = run.series("train/episode_return")
    late = returns[steps >= 0.9 * run.last_step]
    return float(late.mean()) if len(late) else math.nan


def auc_return(run: RunSeries) -> float:
    """Trapezoid area under `eval/return_mean` over steps / (last − first evaluation step)."""
    steps, values = run.series("eval/return_mean")
    if len(values) == 0:
        return math.nan
    span = steps[-1] - steps[0]
    if span == 0:
        return float(values.mean())
    return float(np.trapezoid(values, steps) / span)


@dataclass(frozen=True)
class Metric:
    """A per-run number: `compute(RunSeries)`; `keys` are the logged keys it needs (any of);
    `better` is `higher`, `lower` or `closer to 0` (lower |value|)."""

    name: str
    keys: tuple[str, ...]
    better: str
    compute: Callable[[RunSeries], float]
    label: str


def _last(key: str) -> Callable[[RunSeries], float]:
    return lambda run: last_value(run, key)


def _mean(key: str) -> Callable[[RunSeries], float]:
    return lambda run: mean_value(run, key)


_B_HARD, _B_SOFT = "overestimation/bias_hard", "overestimation/bias_soft"
METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("final_return", ("eval/return_mean", "train/episode_return"), "higher", final_return,
           "final return"),
    Metric("auc_return", ("eval/return_mean",), "higher", auc_return, "average return (AUC)"),
    Metric("final_bias_hard", (_B_HARD,), "closer to 0", _last(_B_HARD), "final bias (hard)"),
    Metric("final_bias_soft", (_B_SOFT,), "closer to 0", _last(_B_SOFT), "final bias (soft)"),
    Metric("avg_bias_hard", (_B_HARD,), "closer to 0", _mean(_B_HARD), "average bias (hard)"),
    Metric("avg_bias_soft", (_B_SOFT,), "closer to 0", _mean(_B_SOFT), "average bias (soft)"),
    Metric("final_mae_qstar", ("exact/mae_qstar",), "lower", _last("exact/mae_qstar"),
           "final |q̂ − Q*|"),
    Metric("final_mae_fixed_point", ("exact/mae_fixed_point",), "lower",
           _last("exact/mae_fixed_point"), "final |q̂ − fixed point|"),
)}


def resolve_metrics(runset: RunSet, names: Sequence[str] | None = None) -> list[Metric]:
    """The metrics to report: `names` (each must be known and logged by some run), or by default
    every metric of `METRICS` that some run logged."""
    if not names:
        logged = [m for m in METRICS.values() if any(runset.logged(k) for k in m.keys)]
        if not logged:
            keys = sorted({k for m in METRICS.values() for k in m.keys})
            warn(f"no run logged any of {', '.join(keys)}: the summary is empty")
        return logged
    chosen = []
    for name in names:
        if name not in METRICS:
            raise AnalysisError(f"unknown metric {name!r} (known: {', '.join(METRICS)})")
        metric = METRICS[name]
        if not any(runset.logged(k) for k in metric.keys):
            raise AnalysisError(f"metric {name}: no run logged {' or '.join(metric.keys)}")
        chosen.append(metric)
    return chosen


def run_metrics(runset: RunSet, metrics: Iterable[Metric] = METRICS.values()) -> pd.DataFrame:
    """One row per run (index `run_id`, all runs of the set), one column per metric, computed from
    every value the run logged: a metric computed from NaN / ±inf records is NaN or ±inf (see
    `nonfinite_values`)."""
    metrics = list(metrics)
    frame = runset.metrics
    keys = sorted({k for m in metrics for k in m.keys})
    steps = frame["step"].to_numpy()
    columns = {k: frame[k].to_numpy(dtype=float) for k in keys if k in frame.columns}
    positions = frame.groupby("run_id", sort=False).indices
    nonfinite = _nonfinite_series(runset.nonfinite, keys)
    empty = np.array([], dtype=int)
    rows = {}
    for run_id in runset.runs["run_id"]:
        rows_of_run = positions.get(run_id, empty)
        run = RunSeries(steps[rows_of_run], {k: v[rows_of_run] for k, v in columns.items()},
                        nonfinite.get(run_id, {}))
        rows[run_id] = {m.name: m.compute(run) for m in metrics}
    return pd.DataFrame.from_dict(rows, orient="index", columns=[m.name for m in metrics])


def _nonfinite_series(nonfinite: pd.DataFrame,
                      keys: Sequence[str]) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """run_id → key → (steps, values) of the non-finite values of `keys` (`RunSet.nonfinite`)."""
    out: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    rows = nonfinite[nonfinite["key"].isin(keys)]
    for (run_id, key), bad in rows.groupby(["run_id", "key"], sort=False):
        out.setdefault(run_id, {})[key] = (bad["step"].to_numpy(float), bad["value"].to_numpy(float))
    return out


def nonfinite_values(runset: RunSet, values: pd.DataFrame,
                     metrics: Sequence[Metric]) -> pd.DataFrame:
    """Where a per-run metric value (`values`, from `run_metrics`) is non-finite because of the
    run's records: ±inf, or NaN while the run logged a NaN / ±inf of one of the metric's keys (a NaN
    for a metric the run never logged is not one). Boolean, shaped like `values`."""
    bad_keys = runset.nonfinite.groupby("run_id")["key"].agg(set).reindex(values.index)
    flags = {}
    for metric in metrics:
        logged_bad = np.array([isinstance(k, set) and not k.isdisjoint(metric.keys)
                               for k in bad_keys], dtype=bool)
        x = values[metric.name].to_numpy(dtype=float)
        flags[metric.name] = np.isinf(x) | (np.isnan(x) & logged_bad)
    return pd.DataFrame(flags, index=values.index)


# ------------------------------------------------------------------------------ configs and seeds


def ignored(column: str, ignore: Iterable[str]) -> bool:
    """Whether `column` matches one of the shell-style patterns in `ignore`."""
    return any(fnmatch.fnmatchcase(column, pattern) for pattern in ignore)


def _varies(values: pd.Series) -> bool:
    return values.astype("string").nunique(dropna=False) > 1


def config_keys(runs: pd.DataFrame, config_columns: Sequence[str],
                ignore: Iterable[str] = DEFAULT_IGNORE) -> list[str]:
    """The config columns that identify a config: the sweep axes present in the runs (`SWEEP_AXES`,
    kept even when constant so that tables show them) and every other config column whose value
    differs between runs, except `seed`, columns matching `ignore`, and `env.id` where it only
    repeats `env`."""
    ignore = (*ignore, "seed")
    if {"env", "env.id"} <= set(runs.columns) and runs["env"].astype("string").equals(
            runs["env.id"].astype("string")):
        ignore = (*ignore, "env.id")
    return [
        c for c in config_columns
        if not ignored(c, ignore) and (c in SWEEP_AXES or _varies(runs[c]))
    ]


@dataclass
class Design:
    """The runs an analysis uses: `table` has one row per run used in the statistics (`run_id`,
    `keys`, `seed`, `status`, `partial`, one column per metric); `diverged` the same for the runs
    that diverged (never averaged, counted per config); `keys` identify a config, `group_keys` a
    τ-comparison group."""

    table: pd.DataFrame
    keys: list[str]
    group_keys: list[str]
    metrics: list[Metric]
    run_values: pd.DataFrame  # `run_metrics` of every loaded run, included or not
    diverged: pd.DataFrame


DIVERGED = "diverged"


def status_counts(runs: pd.DataFrame) -> str:
    """`2 killed, 1 failed`: the runs' statuses, most frequent first."""
    return ", ".join(f"{n} {s}" for s, n in runs["status"].value_counts().items())


def select_runs(runs: pd.DataFrame, include_partial: bool) -> pd.DataFrame:
    """The runs an analysis looks at: finished and diverged ones (diverged ones to be counted, never
    averaged), and the other partial ones (killed, preempted, failed) if `include_partial`, else
    they are left out with a warning. Raises `AnalysisError` when no run is left to average."""
    diverged = runs["status"] == DIVERGED
    other_partial = runs["partial"] & ~diverged
    averaged = ~runs["partial"] | (other_partial & include_partial)
    if not averaged.any():
        raise AnalysisError(_nothing_to_average(runs, include_partial))
    if include_partial or not other_partial.any():
        return runs
    warn(f"{int(other_partial.sum())} of {len(runs)} runs did not finish "
         f"({status_counts(runs[other_partial])}); they are left out (--include-partial to use them)")
    return runs[~other_partial]


def _nothing_to_average(runs: pd.DataFrame, include_partial: bool) -> str:
    """The error when every run is partial, or every run diverged."""
    n_diverged = int((runs["status"] == DIVERGED).sum())
    what = status_counts(runs)
    if include_partial or n_diverged == len(runs):
        return (f"none of the {len(runs)} runs can be averaged ({what}): diverged runs are left "
                "out of every mean")
    others = "them" if not n_diverged else f"the {len(runs) - n_diverged} that did not diverge"
    return f"none of the {len(runs)} runs finished ({what}); use --include-partial to analyse {others}"


def naming_keys(runs: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """The config keys that tell the configs of `runs` apart (those whose value varies), else τ:
    enough to name a config in a message."""
    return [k for k in keys if _varies(runs[k])] or [k for k in ("tau",) if k in keys]


def report_diverged(table: pd.DataFrame, shown: Sequence[str], n_runs: int) -> None:
    """Warn, in one line, how many of the `n_runs` runs diverged and in which configs, each named by
    the keys `shown`: `3 of 12 runs diverged: tau=0.1 (1); tau=1.0 (2); ...`."""
    diverged = table[table["status"] == DIVERGED]
    if diverged.empty:
        return
    configs = "; ".join(f"{describe(config)} ({len(rows)})"
                        for config, rows in _groups(diverged, shown))
    warn(f"{len(diverged)} of {n_runs} runs diverged: {configs}; they are left out of every mean "
         "(n_diverged counts them)")


def listing(names: Sequence[object], limit: int = 5) -> str:
    """`a, b, c` (the first `limit` names, then `…`)."""
    return ", ".join(map(str, names[:limit])) + (" …" if len(names) > limit else "")


def report_nonfinite(dropped: pd.DataFrame) -> None:
    """Warn, one line per metric, which runs' values are NaN / ±inf (from `nonfinite_values`:
    index run_id, one boolean column per metric) and so left out of every statistic."""
    for metric in dropped.columns:
        runs = dropped.index[dropped[metric].to_numpy(dtype=bool)].tolist()
        if runs:
            warn(f"{metric} is NaN or infinite in {len(runs)} run(s) (non-finite values in "
                 f"metrics.jsonl), left out of its statistics: {listing(runs)}")


def prepare(runset: RunSet, metrics: Sequence[Metric] | None = None, *,
            ignore: Iterable[str] = DEFAULT_IGNORE, include_partial: bool = False) -> Design:
    """Select runs (`select_runs`), compute their metrics (a non-finite one becomes NaN, reported
    by `report_nonfinite`), canonicalise configs (operator `hard` at τ = 0) and drop duplicate
    (config, seed) runs, with warnings; diverged runs go to `Design.diverged`, the others to
    `Design.table`."""
    metrics = list(metrics) if metrics is not None else resolve_metrics(runset)
    ignore = tuple(ignore)
    runs = select_runs(runset.runs, include_partial)
    keys = config_keys(runs, runset.config_columns, ignore)
    _report_axes(runs, keys)
    values = run_metrics(runset, metrics)
    dropped = nonfinite_values(runset, values, metrics)
    columns = ["run_id", *keys, *(["seed"] if "seed" in runs.columns else []), "status", "partial"]
    table = runs[columns].join(values.mask(dropped), on="run_id")
    if "seed" not in table.columns:
        table["seed"] = np.nan
    if "tau" in table.columns and "operator" in table.columns:
        table.loc[table["tau"] == 0, "operator"] = "hard"
    if "tau" in table.columns and BEHAVIOUR_TAU in table.columns:  # null: acts with the learner's τ
        table[BEHAVIOUR_TAU] = pd.to_numeric(table[BEHAVIOUR_TAU]).fillna(table["tau"])
    table = _sort(_drop_duplicate_seeds(table, keys), [*keys, "seed", "run_id"])
    report_diverged(table, naming_keys(runs, keys), len(runset.runs))
    diverged = table["status"] == DIVERGED
    report_nonfinite(dropped.loc[table.loc[~diverged, "run_id"]])
    group_keys = [k for k in keys if k not in TAU_KEYS]
    return Design(table[~diverged].reset_index(drop=True), keys, group_keys, metrics, values,
                  diverged=table[diverged].reset_index(drop=True))


def _report_axes(runs: pd.DataFrame, keys: Sequence[str]) -> None:
    """Warn about config keys that vary although no sweep is expected over them."""
    odd = [k for k in keys if k not in SWEEP_AXES and k not in TAU_KEYS]
    if odd:
        described = "; ".join(f"{k} ∈ {{{_values_text(runs[k])}}}" for k in odd)
        warn(f"runs also differ in {described}: each value is its own config "
             f"(--ignore {odd[0]} to pool them)")


def _values_text(values: pd.Series, limit: int = 4) -> str:
    unique = list(dict.fromkeys(str(v) for v in values))
    more = f", … ({len(unique)} values)" if len(unique) > limit else ""
    return ", ".join(unique[:limit]) + more


def _drop_duplicate_seeds(table: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Keep the first run (in load order) of each (config, seed); runs without a seed are kept."""
    duplicated = table.duplicated(subset=[*keys, "seed"], keep="first") & table["seed"].notna()
    if duplicated.any():
        dropped = table.loc[duplicated, "run_id"].tolist()
        warn(f"{len(dropped)} run(s) repeat the config and seed of another run and are left out: "
             f"{listing(dropped)}")
    return table[~duplicated]


def _sort(frame: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Sorted by `by` where values are comparable (mixed-type columns keep their order)."""
    by = [c for c in by if c in frame.columns]
    try:
        return frame.sort_values(by, kind="stable", na_position="first")
    except TypeError:
        return frame


def select(frame: pd.DataFrame, where: dict) -> pd.DataFrame:
    """The rows of `frame` whose columns equal the values of `where` (NaN matching NaN)."""
    mask = np.ones(len(frame), dtype=bool)
    for key, value in where.items():
        column = frame[key]
        mask &= (column.isna().to_numpy() if pd.isna(value) else (column == value).to_numpy())
    return frame[mask]


def _groups(frame: pd.DataFrame, keys: Sequence[str]) -> Iterable[tuple[dict, pd.DataFrame]]:
    """(key values, rows) per distinct combination of `keys` (all rows at once if no keys)."""
    if not keys:
        yield {}, frame
        return
    for values, rows in frame.groupby(list(keys), dropna=False, sort=False):
        yield dict(zip(keys, values, strict=True)), rows


# ------------------------------------------------------------------------------------ statistics


def _rng_kwargs(seed: int) -> dict:
    name = "rng" if "rng" in inspect.signature(scipy.stats.bootstrap).parameters else "random_state"
    return {name: np.random.default_rng(seed)}


def _mean_stat(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def _diff_stat(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def bootstrap_ci(samples: Sequence[np.ndarray], statistic: Callable = _mean_stat, *,
                 n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE,
                 seed: int = SEED) -> tuple[np.ndarray | float, np.ndarray | float]:
    """The percentile bootstrap interval of `statistic` (vectorised over axis 0 of each sample,
    samples resampled independently); NaN when a sample has fewer than two observations."""
    if any(np.shape(s)[0] < 2 for s in samples):
        shape = np.shape(samples[0])[1:]
        nan = np.full(shape, np.nan) if shape else math.nan
        return nan, nan
    result = scipy.stats.bootstrap(
        tuple(samples), statistic, n_resamples=n_resamples, confidence_level=confidence,
        method="percentile", vectorized=True, paired=False, axis=0, **_rng_kwargs(seed))
    low, high = result.confidence_interval
    return (float(low), float(high)) if np.ndim(low) == 0 else (low, high)


def improvement_scores(x: np.ndarray, better: str) -> np.ndarray:
    """`x` mapped so that higher is better: x (`higher`), −x (`lower`), −|x| (`closer to 0`)."""
    x = np.asarray(x, float)
    return {"higher": x, "lower": -x, "closer to 0": -np.abs(x)}[better]


def probability_of_improvement(x: np.ndarray, y: np.ndarray, better: str) -> float:
    """P(X > Y) = 1/(n·m) Σ_i Σ_j [s(x_i) > s(y_j)] + ½·[s(x_i) = s(y_j)], with s the
    `improvement_scores` map: the fraction of pairs in which x_i is better (ties count ½; the
    Mann-Whitney U statistic over n·m, as in rliable)."""
    if not len(x) or not len(y):
        return math.nan
    return float(_improvement_stat(better)(np.asarray(x, float), np.asarray(y, float)))


def _improvement_stat(better: str) -> Callable[..., np.ndarray]:
    """`probability_of_improvement` vectorised over leading axes (for `bootstrap_ci`)."""
    def statistic(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        a = improvement_scores(np.moveaxis(x, axis, -1), better)[..., :, None]
        b = improvement_scores(np.moveaxis(y, axis, -1), better)[..., None, :]
        return np.mean((a > b) + 0.5 * (a == b), axis=(-2, -1))
    return statistic


def iqm(x: np.ndarray, axis: int = -1) -> np.ndarray | float:
    """The interquartile mean: the mean of the middle 50% of `x`, `scipy.stats.trim_mean(x, 0.25)`
    (⌊n/4⌋ values cut from each end)."""
    return scipy.stats.trim_mean(x, 0.25, axis=axis)


def pooled_iqm(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    """The IQM of all `samples` pooled (rliable's aggregate IQM over the runs of every task); with
    `bootstrap_ci`, each sample (task) is resampled on its own: a stratified bootstrap."""
    return iqm(np.concatenate([np.moveaxis(s, axis, -1) for s in samples], axis=-1))


def few_seeds(ns: Iterable[int]) -> str | None:
    """`CIs rest on fewer than 5 seeds (n = 2–3)` when some of the seed counts `ns` (of
    intervals that were computed: n ≥ 2) is below `MIN_SEEDS`; None otherwise."""
    few = sorted({int(n) for n in ns if n < MIN_SEEDS})
    if not few:
        return None
    counts = f"{few[0]}" if len(few) == 1 else f"{few[0]}–{few[-1]}"
    return f"CIs rest on fewer than {MIN_SEEDS} seeds (n = {counts})"


def report_few_seeds(table: str, ns: Sequence[int]) -> None:
    """One warning for `table` when CIs in it rest on fewer than `MIN_SEEDS` seeds (`ns`: the seeds
    behind each interval)."""
    text = few_seeds(n for n in ns if n >= 2)
    if text:
        n_few = sum(2 <= n < MIN_SEEDS for n in ns)
        warn(f"{table}: {text} in {n_few} of {len(ns)} rows: percentile bootstrap intervals over "
             "so few seeds are too narrow (they cannot reach beyond the values seen); "
             "treat them as rough")


def seed_values(rows: pd.DataFrame, metric: str) -> np.ndarray:
    """A config's finite values of `metric`, in increasing seed order (then run id)."""
    ordered = _sort(rows, ["seed", "run_id"])
    values = ordered[metric].to_numpy(dtype=float)
    return values[np.isfinite(values)]


SAMPLE_STATS = ("mean", "iqm", "ci_low", "ci_high", "iqm_ci_low", "iqm_ci_high")


def sample_stats(x: np.ndarray, *, n_resamples: int = N_RESAMPLES,
                 seed: int = SEED) -> dict[str, float]:
    """`mean`, `iqm` of a config's values `x`, and the percentile bootstrap intervals of each:
    `ci_low`, `ci_high` (mean) and `iqm_ci_low`, `iqm_ci_high` (IQM) (all NaN when `x` is empty;
    the CIs NaN with fewer than two values)."""
    if not len(x):
        return dict.fromkeys(SAMPLE_STATS, math.nan)
    low, high = bootstrap_ci((x,), n_resamples=n_resamples, seed=seed)
    iqm_low, iqm_high = bootstrap_ci((x,), iqm, n_resamples=n_resamples, seed=seed)
    return {"mean": float(np.mean(x)), "iqm": float(iqm(x)), "ci_low": low, "ci_high": high,
            "iqm_ci_low": iqm_low, "iqm_ci_high": iqm_high}


def with_diverged(design: Design) -> pd.DataFrame:
    """`design.table` and `design.diverged` in one frame, in config order, with a boolean column
    `diverged`."""
    frames = [design.table.assign(diverged=False)]
    if len(design.diverged):
        frames.append(design.diverged.assign(diverged=True))
    return _sort(pd.concat(frames, ignore_index=True), [*design.keys, "seed", "run_id"])


def summarize(design: Design, *, n_resamples: int = N_RESAMPLES, seed: int = SEED) -> pd.DataFrame:
    """Per config and metric: `n` (finite values used), `n_partial` (of those, from partial runs),
    `n_diverged` (the config's runs that diverged: never averaged), and `sample_stats` of the
    values. A config has a row for a metric when one of its runs, used or diverged, has a finite
    value of it: a config whose runs all diverged shows with n = 0."""
    rows = []
    for config, runs in _groups(with_diverged(design), design.keys):
        used = runs[~runs["diverged"]]
        for metric in design.metrics:
            if not np.isfinite(runs[metric.name].to_numpy(dtype=float)).any():
                continue
            x = seed_values(used, metric.name)
            finite = np.isfinite(used[metric.name].to_numpy(dtype=float))
            rows.append({
                **config, "metric": metric.name, "better": metric.better, "n": len(x),
                "n_partial": int(used["partial"].to_numpy()[finite].sum()),
                "n_diverged": int(runs["diverged"].sum()),
                **sample_stats(x, n_resamples=n_resamples, seed=seed),
            })
    columns = [*design.keys, "metric", "better", "n", "n_partial", "n_diverged", *SAMPLE_STATS]
    report_few_seeds("summary", [r["n"] for r in rows])
    return _order_rows(pd.DataFrame(rows, columns=columns), design.keys, design.metrics)


def _order_rows(frame: pd.DataFrame, keys: Sequence[str],
                metrics: Sequence[Metric]) -> pd.DataFrame:
    order = {m.name: i for i, m in enumerate(metrics)}
    frame = frame.assign(_m=frame["metric"].map(order))
    return _sort(frame, [*keys, "_m"]).drop(columns="_m").reset_index(drop=True)


# -------------------------------------------------------------------------- versus the hard max


def check_comparable(design: Design) -> None:
    """Warn when the versus-hard-max table will be empty or miss groups: no τ > 0 run, no τ = 0 run,
    no group holding both (the warning names the config keys whose values differ between the two
    sets), or some groups without τ = 0 (saying so when the missing runs diverged). Raise only when
    the runs have no τ at all."""
    table, diverged = design.table, design.diverged
    if "tau" not in table.columns:
        raise AnalysisError("no run has a 'tau' in its config: cannot compare with the hard max")
    hard, soft = table[table["tau"] == 0], table[table["tau"] > 0]
    if soft.empty:
        if (diverged["tau"] > 0).any():
            warn("every τ > 0 run diverged: the versus-hard-max table has no mean at τ > 0")
        else:
            warn("no run has τ > 0: the versus-hard-max table is empty")
        return
    if hard.empty:
        none = ("every τ = 0 run (the hard max) diverged" if (diverged["tau"] == 0).any()
                else "no run has τ = 0 (the hard max)")
        warn(f"{none}: the versus-hard-max table is empty")
        return
    groups_with_hard = {_key(c) for c, _ in _groups(hard, design.group_keys)}
    missing = [c for c, _ in _groups(soft, design.group_keys) if _key(c) not in groups_with_hard]
    if len(missing) == len(list(_groups(soft, design.group_keys))):
        differ = [k for k in design.group_keys if _value_set(hard[k]) != _value_set(soft[k])]
        detail = "; ".join(f"{k}: τ = 0 has {{{_values_text(hard[k])}}}, τ > 0 has "
                           f"{{{_values_text(soft[k])}}}" for k in differ)
        warn("incompatible runs: no τ > 0 config matches a τ = 0 config in every other key "
             f"(they differ in {detail or 'nothing visible'}): the versus-hard-max table is empty")
        return
    hard_diverged = diverged[diverged["tau"] == 0]
    for config in missing:
        none = (f"every τ = 0 run of {describe(config)} diverged" if len(select(hard_diverged, config))
                else f"no τ = 0 runs for {describe(config)}")
        warn(f"{none}: its τ > 0 rows are left out of vs_hard_max")


def _key(config: dict) -> tuple:
    return tuple("<NA>" if pd.isna(v) else str(v) for v in config.values())


def _value_set(values: pd.Series) -> set[str]:
    return {str(v) for v in values}


def describe(config: dict) -> str:
    """`key=value, ...` of a group (or `all runs`)."""
    return ", ".join(f"{k}={v}" for k, v in config.items()) or "all runs"


def hard_reference(hard: pd.DataFrame, setting: dict) -> pd.DataFrame:
    """The τ = 0 runs a τ > 0 setting is compared with: all of them when they share one behaviour
    τ; otherwise those that act as the setting does (same behaviour τ), else those that act
    ε-greedy (behaviour τ 0, the hard max's own policy)."""
    if BEHAVIOUR_TAU not in setting or hard[BEHAVIOUR_TAU].nunique() <= 1:
        return hard
    same = hard[hard[BEHAVIOUR_TAU] == setting[BEHAVIOUR_TAU]]
    return same if len(same) else hard[hard[BEHAVIOUR_TAU] == 0]


def acting_alike(runs: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """The rows of `runs` whose behaviour τ is one of `reference`'s (all of them without one)."""
    if BEHAVIOUR_TAU not in runs.columns:
        return runs
    return runs[runs[BEHAVIOUR_TAU].isin(reference[BEHAVIOUR_TAU])]


VERSUS_STATS = ("mean", "mean_hard", "diff", "ci_low", "ci_high", "p_improvement",
                "p_improvement_ci_low", "p_improvement_ci_high")


def versus_stats(x: np.ndarray, y: np.ndarray, better: str, *, n_resamples: int = N_RESAMPLES,
                 seed: int = SEED) -> dict[str, float]:
    """`mean` (of x, the values at τ), `mean_hard` (of y, at τ = 0), `diff`, `ci_low`, `ci_high`
    (of the difference), `p_improvement` and its interval `p_improvement_ci_low`,
    `p_improvement_ci_high` (x and y resampled independently; see the module docstring); NaN
    where x is empty."""
    stats = dict.fromkeys(VERSUS_STATS, math.nan) | {"mean_hard": float(np.mean(y))}
    if len(x):
        low, high = bootstrap_ci((x, y), _diff_stat, n_resamples=n_resamples, seed=seed)
        p_low, p_high = bootstrap_ci((x, y), _improvement_stat(better), n_resamples=n_resamples,
                                     seed=seed)
        stats.update(mean=float(np.mean(x)), diff=float(np.mean(x) - np.mean(y)), ci_low=low,
                     ci_high=high, p_improvement=probability_of_improvement(x, y, better),
                     p_improvement_ci_low=p_low, p_improvement_ci_high=p_high)
    return stats


def vs_hard_max(design: Design, *, n_resamples: int = N_RESAMPLES,
                seed: int = SEED) -> pd.DataFrame:
    """Per group, operator, τ > 0 and metric: n, n_hard, n_diverged, n_diverged_hard (runs at τ and
    of the τ = 0 reference that diverged: never averaged) and `versus_stats` against the group's
    τ = 0 runs (see the module docstring). A setting whose runs all diverged has rows with n = 0,
    like in `summarize`."""
    check_comparable(design)
    frame = with_diverged(design)
    tau_keys = [k for k in TAU_KEYS if k in frame.columns]
    rows = []
    for group, runs in _groups(frame, design.group_keys):
        at_zero = runs[runs["tau"] == 0]
        hard = at_zero[~at_zero["diverged"]]
        if hard.empty:
            continue
        for setting, sub in _groups(runs[runs["tau"] > 0], tau_keys):
            reference = hard_reference(hard, setting)
            if reference.empty:
                warn(f"no τ = 0 run of {describe({**group, **setting})} acts with behaviour τ "
                     f"{setting[BEHAVIOUR_TAU]} or 0: left out of vs_hard_max")
                continue
            used = sub[~sub["diverged"]]
            n_diverged = {"n_diverged": int(sub["diverged"].sum()), "n_diverged_hard": len(
                acting_alike(at_zero[at_zero["diverged"]], reference))}
            for metric in design.metrics:
                x, y = seed_values(used, metric.name), seed_values(reference, metric.name)
                if not len(y) or not np.isfinite(sub[metric.name].to_numpy(dtype=float)).any():
                    continue
                rows.append({
                    **group, **setting, "metric": metric.name, "better": metric.better,
                    "n": len(x), "n_hard": len(y), **n_diverged,
                    **versus_stats(x, y, metric.better, n_resamples=n_resamples, seed=seed),
                })
    columns = [*design.group_keys, *tau_keys, "metric", "better", "n", "n_hard", "n_diverged",
               "n_diverged_hard", *VERSUS_STATS]
    report_few_seeds("vs_hard_max", [min(r["n"], r["n_hard"]) for r in rows])
    return _order_rows(pd.DataFrame(rows, columns=columns), [*design.group_keys, *tau_keys],
                       design.metrics)


# ----------------------------------------------------------------------------------------- curves


def step_grid(metrics: pd.DataFrame, key: str, n_points: int = 101) -> np.ndarray:
    """`n_points` evenly spaced integer steps from the first to the last step at which any run
    logged `key` (fewer if that span has fewer integers)."""
    steps = metrics.loc[metrics[key].notna(), "step"] if key in metrics.columns else []
    if not len(steps):
        return np.array([], dtype=float)
    grid = np.unique(np.round(np.linspace(steps.min(), steps.max(), n_points)))
    return grid.astype(float)


def resample(metrics: pd.DataFrame, key: str, grid: np.ndarray,
             nonfinite: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each run's `key` linearly interpolated onto `grid` (rows: run_id, columns: grid steps); NaN
    outside the steps the run logged it over (no extrapolation), and around each NaN / ±inf it
    logged (rows of `RunSet.nonfinite`), see `blank_around`. Values logged twice at one step are
    averaged first."""
    bad = {} if nonfinite is None else {
        run_id: rows["step"].to_numpy(float)
        for run_id, rows in nonfinite[nonfinite["key"] == key].groupby("run_id", sort=False)}
    rows = {}
    for run_id, run in metrics.loc[metrics[key].notna(), ["run_id", "step", key]].groupby(
            "run_id", sort=False):
        points = run.groupby("step")[key].mean()
        steps = points.index.to_numpy(float)
        curve = np.interp(grid, steps, points.to_numpy(float), left=np.nan, right=np.nan)
        rows[run_id] = blank_around(curve, grid, steps, bad.get(run_id, ()))
    return pd.DataFrame.from_dict(rows, orient="index", columns=grid)


def blank_around(curve: np.ndarray, grid: np.ndarray, steps: np.ndarray,
                 bad_steps: Iterable[float]) -> np.ndarray:
    """`curve` (on `grid`, interpolated between finite records at `steps`) with NaN strictly between
    the finite records on either side of each non-finite record at `bad_steps`: the curve is
    unknown there, so the run does not count there, rather than count with a made-up value."""
    curve = curve.copy()
    for bad in bad_steps:
        before = steps[steps < bad].max(initial=-np.inf)
        after = steps[steps > bad].min(initial=np.inf)
        curve[(grid > before) & (grid < after)] = np.nan
    return curve


def report_curve_gaps(nonfinite: pd.DataFrame, key: str) -> None:
    """Warn, in one line, which runs logged NaN / ±inf values of `key` (rows of `RunSet.nonfinite`):
    those points are left out of its curve."""
    runs = list(dict.fromkeys(nonfinite.loc[nonfinite["key"] == key, "run_id"]))
    if runs:
        warn(f"{key}: NaN or infinite values of {len(runs)} run(s) are left out of its curve: "
             f"{listing(runs)}")


def binned(metrics: pd.DataFrame, key: str, x: str, n_bins: int = 50) -> pd.DataFrame:
    """Each run's mean of `key` in equal-width bins of `x` (e.g. episode index); rows: run_id,
    columns: bin centres. Bins span 0 … the largest `x`; a bin a run never reached is NaN."""
    sub = metrics.loc[metrics[key].notna() & metrics[x].notna(), ["run_id", x, key]]
    if sub.empty:
        return pd.DataFrame()
    top = float(sub[x].max()) + 1
    width = max(1.0, math.ceil(top / n_bins))
    edges = np.arange(0, top + width, width)
    centres = (edges[:-1] + edges[1:]) / 2 - 0.5
    index = np.minimum((sub[x].to_numpy(float) // width).astype(int), len(centres) - 1)
    means = sub.assign(_bin=index).groupby(["run_id", "_bin"], sort=False)[key].mean()
    wide = means.unstack("_bin").reindex(columns=range(len(centres)))
    wide.columns = centres
    return wide


def curve_stats(curves: pd.DataFrame, design: Design, key: str, *,
                n_resamples: int = 2000, seed: int = SEED) -> pd.DataFrame:
    """Per config and grid point: n runs with a finite value there, their mean, and the 95%
    percentile bootstrap CI of the mean over seeds (`curves` from `resample` or `binned`; runs
    outside `design` ignored)."""
    rows = []
    table = design.table[design.table["run_id"].isin(curves.index)]
    for config, runs in _groups(table, design.keys):
        values = curves.loc[_sort(runs, ["seed", "run_id"])["run_id"]].to_numpy(float)
        masks = np.isfinite(values)  # NaN / ±inf points are left out of every statistic
        n = masks.sum(axis=0)
        mean = np.where(n > 0, np.where(masks, values, 0).sum(axis=0) / np.maximum(n, 1), np.nan)
        low, high = np.full(len(n), np.nan), np.full(len(n), np.nan)
        for pattern in {tuple(col) for col in masks.T}:
            cols = np.all(np.array(pattern) == masks.T, axis=1)
            chosen = values[np.array(pattern)][:, cols]
            lo, hi = bootstrap_ci((chosen,), n_resamples=n_resamples, seed=seed)
            low[cols], high[cols] = lo, hi
        for i, x in enumerate(curves.columns):
            if n[i]:
                rows.append({**config, "metric": key, "x": float(x), "n": int(n[i]),
                             "mean": mean[i], "ci_low": low[i], "ci_high": high[i]})
    return pd.DataFrame(rows, columns=[*design.keys, "metric", "x", "n", "mean", "ci_low",
                                       "ci_high"])


# ---------------------------------------------------------------------------------------- tables


_HEADERS = {"tau": "τ"}


def _fmt(value: float) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.4g}"


def vs_hard_max_markdown(table: pd.DataFrame, design: Design, *,
                         n_resamples: int = N_RESAMPLES) -> str:
    """The versus-hard-max table as markdown: one section per group, one row per metric and τ."""
    tau_keys = [k for k in TAU_KEYS if k in table.columns]
    lines = [
        "# τ versus the hard max (τ = 0)",
        "",
        f"Δ = mean over seeds at τ − mean at τ = 0 (in the metric's units), with a "
        f"{CONFIDENCE:.0%} percentile bootstrap CI ({n_resamples} resamples, the two sets of "
        "seeds resampled independently). P(better) = fraction of (seed at τ, seed at τ = 0) pairs "
        "in which τ is better, ties counting ½ (its CI: the same bootstrap); higher is better for "
        "returns, lower for errors, "
        "lower |bias| for biases. n = seeds at τ / seeds at τ = 0; diverged = runs at τ / at "
        "τ = 0 that diverged (never averaged).",
    ]
    if table.empty:
        lines += ["", "No τ > 0 config has τ = 0 runs to compare with."]
    for group, rows in _groups(table, design.group_keys):
        lines += ["", f"## {describe(group)}", "",
                  f"| metric | better | {' | '.join(_HEADERS.get(k, k) for k in tau_keys)} "
                  "| mean (τ) | mean (τ = 0) "
                  "| Δ [95% CI] | P(better) [95% CI] | n | diverged |",
                  "|" + " --- |" * (len(tau_keys) + 8)]
        for _, r in rows.iterrows():
            settings = " | ".join(str(r[k]).replace("|", "\\|") for k in tau_keys)
            lines.append(
                f"| {r['metric']} | {r['better']} | {settings} | {_fmt(r['mean'])} | "
                f"{_fmt(r['mean_hard'])} | {_fmt(r['diff'])} [{_fmt(r['ci_low'])}, "
                f"{_fmt(r['ci_high'])}] | {_fmt(r['p_improvement'])} "
                f"[{_fmt(r['p_improvement_ci_low'])}, {_fmt(r['p_improvement_ci_high'])}] | "
                f"{r['n']}/{r['n_hard']} | "
                f"{r['n_diverged']}/{r['n_diverged_hard']} |")
    return "\n".join(lines) + "\n"
