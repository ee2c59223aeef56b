"""Analysis of runs: load run directories / wandb projects, aggregate over seeds, plot.

See docs/analysis.md. Entry point: `softq-analyze RUNS... --out DIR` (`softq_lab.analysis.cli`).
"""

from softq_lab.analysis.aggregate import (
    METRICS,
    Design,
    Metric,
    bootstrap_ci,
    iqm,
    pooled_iqm,
    prepare,
    probability_of_improvement,
    resample,
    resolve_metrics,
    run_metrics,
    step_grid,
    summarize,
    vs_hard_max,
)
from softq_lab.analysis.load import (
    AnalysisError,
    AnalysisWarning,
    RunSet,
    combine,
    find_runs,
    frame_from_wandb_runs,
    load_runs,
    load_wandb,
)

__all__ = [
    "METRICS",
    "AnalysisError",
    "AnalysisWarning",
    "Design",
    "Metric",
    "RunSet",
    "bootstrap_ci",
    "combine",
    "find_runs",
    "frame_from_wandb_runs",
    "iqm",
    "load_runs",
    "load_wandb",
    "pooled_iqm",
    "prepare",
    "probability_of_improvement",
    "resample",
    "resolve_metrics",
    "run_metrics",
    "step_grid",
    "summarize",
    "vs_hard_max",
]
