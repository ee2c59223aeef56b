"""Across envs, as rliable (Agarwal et al., 2021, "Deep RL at the edge of the statistical precipice")
does it, on scipy: min-max-normalised scores, their IQM with a stratified bootstrap CI, and the
performance profile with its CI.

A **task** is an env (the config keys `env`, `env.*`); an **algorithm** is a config without its
task keys (τ, operator, network, ...). For a return metric (`SCORE_METRICS`) and env e with bounds
(low_e, high_e), a run's normalised score is s = (x − low_e) / (high_e − low_e): 0 at low_e, 1 at
high_e. Bounds come from `--score-bounds ENV=LOW:HIGH` (e.g. a random policy's return and the
maximum return), else from the data: the lowest and highest value of the metric over every run
used, of every config, on that env (`score_bounds`).

With S_e the scores of an algorithm's runs on env e:

- `iqm`: the IQM of all its scores pooled over envs, `trim_mean(∪_e S_e, 0.25)`; `mean` likewise;
- `iqm_ci_low`, `iqm_ci_high` (and `mean_ci_*`): 95% percentile **stratified** bootstrap: each
  env's runs are resampled on their own (`scipy.stats.bootstrap` with one sample per env,
  `paired=False`), then pooled;
- `p_improvement` (τ > 0 algorithms): rliable's average probability of improvement over the
  hard max, (1/E) Σ_e P(X_e > Y_e), with X_e this algorithm's returns on env e and Y_e those of the
  τ = 0 algorithm equal in every other key (acting alike: `aggregate.hard_reference`), P the
  fraction of pairs in which x beats y, ties ½, over the E envs both ran on; its CI,
  `p_improvement_ci_low`/`_high`, resamples each X_e and Y_e on its own;
- performance profile: F(t) = (1/E) Σ_e |{s ∈ S_e : s > t}| / |S_e|, the fraction of runs scoring
  above t, each env weighing the same, on a grid of thresholds t, with the same stratified
  bootstrap CI at each t.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from softq_lab.analysis.aggregate import (
    N_RESAMPLES,
    SEED,
    TAU_KEYS,
    Design,
    _groups,
    _improvement_stat,
    _sort,
    bootstrap_ci,
    hard_reference,
    pooled_iqm,
    report_few_seeds,
    seed_values,
    select,
)
from softq_lab.analysis.load import AnalysisError, warn

#: Metrics that are scores (higher is better, normalisable): returns, not biases or errors.
SCORE_METRICS = ("final_return", "auc_return")
N_THRESHOLDS = 51

Bounds = Mapping[str, tuple[float, float]]


def task_keys(keys: Sequence[str]) -> list[str]:
    """The config keys naming a task: `env` and `env.*`."""
    return [k for k in keys if k == "env" or k.startswith("env.")]


def algorithm_keys(keys: Sequence[str]) -> list[str]:
    """The config keys naming an algorithm: every config key but the task's."""
    tasks = task_keys(keys)
    return [k for k in keys if k not in tasks]


def parse_bounds(items: Sequence[str]) -> dict[str, tuple[float, float]]:
    """`["cartpole=22:500"]` → {"cartpole": (22.0, 500.0)}; raises `AnalysisError` on bad input
    (not ENV=LOW:HIGH, or LOW ≥ HIGH)."""
    bounds = {}
    for item in items:
        env, _, span = item.partition("=")
        low, _, high = span.partition(":")
        try:
            pair = (float(low), float(high))
        except ValueError:
            pair = None
        if not env or pair is None or not pair[0] < pair[1]:
            raise AnalysisError(f"--score-bounds {item}: expected ENV=LOW:HIGH with LOW < HIGH")
        bounds[env] = pair
    return bounds


def score_bounds(design: Design, metric: str, given: Bounds) -> pd.DataFrame:
    """Per env: `low`, `high` and `source` (`given` by `--score-bounds`, else `data`: the min and
    max of `metric` over every run used on that env)."""
    rows = []
    for env, runs in design.table.groupby("env", sort=True):
        values = runs[metric].to_numpy(float)
        values = values[np.isfinite(values)]
        if env in given:
            rows.append({"env": env, "metric": metric, "low": given[env][0],
                         "high": given[env][1], "source": "given"})
        elif len(values):
            rows.append({"env": env, "metric": metric, "low": float(values.min()),
                         "high": float(values.max()), "source": "data"})
    return pd.DataFrame(rows, columns=["env", "metric", "low", "high", "source"])


def normalise(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """(x − low) / (high − low); NaN when high = low (one value on the env: nothing to scale)."""
    span = high - low
    return (np.asarray(x, float) - low) / span if span > 0 else np.full(np.shape(x), np.nan)


def scores_by_env(runs: pd.DataFrame, metric: str,
                  bounds: pd.DataFrame) -> dict[str, np.ndarray]:
    """env → the normalised finite scores of `runs` there (in seed order)."""
    limits = bounds.set_index("env")
    out = {}
    for env, rows in runs.groupby("env", sort=True):
        if env in limits.index:
            scores = normalise(seed_values(rows, metric), *limits.loc[env, ["low", "high"]])
            if np.isfinite(scores).any():
                out[env] = scores[np.isfinite(scores)]
    return out


def _pooled_mean(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(np.concatenate([np.moveaxis(s, axis, -1) for s in samples], axis=-1), axis=-1)


def profile_stat(thresholds: np.ndarray) -> Callable[..., np.ndarray]:
    """F(t) per threshold (first axis of the result), vectorised over resamples (for
    `bootstrap_ci`): the mean over samples (envs) of the fraction of scores above t."""
    def statistic(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
        fractions = []
        for s in samples:
            s = np.moveaxis(s, axis, -1)
            t = thresholds.reshape(-1, *[1] * s.ndim)
            fractions.append(np.mean(s[None, ...] > t, axis=-1))
        return np.mean(fractions, axis=0)
    return statistic


def mean_improvement_stat(n_envs: int) -> Callable[..., np.ndarray]:
    """(1/E) Σ_e P(X_e > Y_e) of samples given as x_1, y_1, …, x_E, y_E (higher is better),
    vectorised over resamples (for `bootstrap_ci`)."""
    pair = _improvement_stat("higher")

    def statistic(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean([pair(samples[2 * e], samples[2 * e + 1], axis=axis)
                        for e in range(n_envs)], axis=0)
    return statistic


def improvement_over_hard(design: Design, algorithm: dict, runs: pd.DataFrame, metric: str, *,
                          n_resamples: int, seed: int) -> dict[str, float]:
    """`p_improvement` and its CI of `algorithm` (its `runs`) over the hard max (see the module
    docstring); NaN for τ = 0, or without τ = 0 runs on a shared env."""
    out = dict.fromkeys(IMPROVEMENT_COLUMNS, float("nan"))
    if algorithm.get("tau", 0) == 0:
        return out
    others = {k: v for k, v in algorithm.items() if k not in TAU_KEYS}
    hard = select(design.table[design.table["tau"] == 0], others)
    hard = hard_reference(hard, algorithm) if len(hard) else hard
    pairs = []
    for env, rows in runs.groupby("env", sort=True):
        x, y = seed_values(rows, metric), seed_values(hard[hard["env"] == env], metric)
        if len(x) and len(y):
            pairs += [x, y]
    if not pairs:
        return out
    statistic = mean_improvement_stat(len(pairs) // 2)
    low, high = bootstrap_ci(tuple(pairs), statistic, n_resamples=n_resamples, seed=seed)
    return {"p_improvement": float(statistic(*pairs)), "p_improvement_ci_low": low,
            "p_improvement_ci_high": high}


IMPROVEMENT_COLUMNS = ("p_improvement", "p_improvement_ci_low", "p_improvement_ci_high")


def _algorithms(design: Design) -> list[tuple[dict, pd.DataFrame]]:
    keys = algorithm_keys(design.keys)
    return list(_groups(_sort(design.table, keys), keys))


def check_envs(design: Design) -> bool:
    """Whether the runs span at least two envs (else there is nothing to aggregate across)."""
    return "env" in design.table.columns and design.table["env"].nunique() >= 2


def across_envs(design: Design, bounds: Bounds | None = None, *,
                n_resamples: int = N_RESAMPLES,
                seed: int = SEED) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(`across_envs`, `performance_profile`, `score_bounds`) tables for every score metric the
    runs have, per algorithm (see the module docstring). Empty frames with fewer than two envs."""
    bounds = bounds or {}
    keys = algorithm_keys(design.keys)
    metrics = [m.name for m in design.metrics if m.name in SCORE_METRICS]
    summary_cols = [*keys, "metric", "n_envs", "n", "mean", "mean_ci_low", "mean_ci_high", "iqm",
                    "iqm_ci_low", "iqm_ci_high", *IMPROVEMENT_COLUMNS]
    profile_cols = [*keys, "metric", "threshold", "fraction", "ci_low", "ci_high"]
    summary, profile, limits, seeds = [], [], [], []
    if not check_envs(design):
        metrics = []
    n_envs = design.table["env"].nunique()
    for metric in metrics:
        env_bounds = score_bounds(design, metric, bounds)
        limits.append(env_bounds)
        algorithms = _algorithms(design)
        by_algorithm = [(a, scores_by_env(runs, metric, env_bounds)) for a, runs in algorithms]
        top = max((s.max() for _, scores in by_algorithm for s in scores.values()), default=1.0)
        bottom = min((s.min() for _, scores in by_algorithm for s in scores.values()), default=0.0)
        thresholds = np.linspace(min(0.0, bottom), max(1.0, top), N_THRESHOLDS)
        for (algorithm, scores), (_, runs) in zip(by_algorithm, algorithms, strict=True):
            if not scores:
                continue
            samples = tuple(scores.values())
            stats = {"n_envs": len(samples), "n": sum(len(s) for s in samples),
                     "mean": float(_pooled_mean(*samples)), "iqm": float(pooled_iqm(*samples))}
            stats["mean_ci_low"], stats["mean_ci_high"] = bootstrap_ci(
                samples, _pooled_mean, n_resamples=n_resamples, seed=seed)
            stats["iqm_ci_low"], stats["iqm_ci_high"] = bootstrap_ci(
                samples, pooled_iqm, n_resamples=n_resamples, seed=seed)
            stats |= improvement_over_hard(design, algorithm, runs, metric,
                                           n_resamples=n_resamples, seed=seed)
            summary.append({**algorithm, "metric": metric, **stats})
            seeds.append(min(len(s) for s in samples))
            fraction = profile_stat(thresholds)(*samples)
            low, high = bootstrap_ci(samples, profile_stat(thresholds), n_resamples=n_resamples,
                                     seed=seed)
            low, high = np.broadcast_to(low, fraction.shape), np.broadcast_to(high, fraction.shape)
            profile += [{**algorithm, "metric": metric, "threshold": float(t), "fraction": f,
                         "ci_low": lo, "ci_high": hi}
                        for t, f, lo, hi in zip(thresholds, fraction, low, high, strict=True)]
            if len(samples) < n_envs:
                warn(f"across envs: {', '.join(f'{k}={v}' for k, v in algorithm.items())} ran on "
                     f"{len(samples)} of {n_envs} envs; its {metric} aggregate covers those only")
    report_few_seeds("across_envs", seeds)
    bounds_cols = ["env", "metric", "low", "high", "source"]
    return (pd.DataFrame(summary, columns=summary_cols),
            pd.DataFrame(profile, columns=profile_cols),
            pd.concat(limits, ignore_index=True) if limits else pd.DataFrame(columns=bounds_cols))
