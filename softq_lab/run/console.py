"""What a person at the terminal sees: the progress bar while runs train, a summary when they end.

The bar lives here, not in a driver: `Progress.tap` wraps each run's logger, so the bar reads the
same records the files get (the step, the last evaluation) whichever driver produced them. It shows
env steps/s and the time left (tqdm's own rate and ETA, counted in env steps over all runs of a
batch), the last greedy evaluation return and the last `overestimation/bias_hard` (for a batch:
their means over the runs that have logged one). It writes to stderr and only on a TTY unless
`logger.progress=on`.

The summary (`summary_block`, `job_line`, `sweep_table`) goes to stdout, on a TTY or not, so the
stderr contracts (one line per error, the sweep's "did not finish" lines last) stay as they are.
"""

from __future__ import annotations

import json
import math
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from softq_lab.run.config import WandbConfig
from softq_lab.run.loggers import EVAL_RETURN, METRICS_FILE

Logger = Callable[[int, dict[str, Any]], None]  # (global step, record) -> None

RETURN = EVAL_RETURN
BIAS_HARD = "overestimation/bias_hard"
# The final numbers a run's summary shows (and its wandb summary holds), with their labels.
FINAL_NUMBERS = {
    RETURN: "greedy eval return",
    BIAS_HARD: "over-estimation bias vs hard return",
    "overestimation/bias_soft": "over-estimation bias vs soft return",
    "exact/bias_qstar": "exact bias vs Q*",
    "exact/mae_qstar": "exact |q - Q*|",
    "exact/mae_fixed_point": "exact |q - fixed point|",
}


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _fmt(value: float | None, spec: str = ".1f") -> str:
    """`value` formatted, or `-` when there is none."""
    if value is None or not math.isfinite(value):
        return "-"
    return format(value, spec)


def _spec(key: str) -> str:
    """Returns with one decimal; biases signed, errors plain, to 3 significant digits."""
    return ".1f" if key == RETURN else "+.3g" if "bias" in key else ".3g"


def bar_enabled(mode: str) -> bool:
    """`logger.progress`: on, off, or auto (only when stderr is a terminal)."""
    return mode == "on" or (mode == "auto" and sys.stderr.isatty())


class Progress:
    """One tqdm bar for a batch of runs, advanced by the records their loggers receive."""

    def __init__(self, total_steps: int, runs: int) -> None:
        from tqdm import tqdm

        self._step = 0
        self._last: list[dict[str, float]] = [{} for _ in range(runs)]
        self._bar = tqdm(
            total=total_steps,
            unit=" env steps",
            unit_scale=runs if runs > 1 else False,  # count and rate in env steps of all runs
            dynamic_ncols=True,
            file=sys.stderr,
            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]"
            "{postfix}",
        )
        self._show()

    def tap(self, r: int, log: Logger) -> Logger:
        """Run r's logger, which now also moves the bar."""

        def logged(step: int, record: dict[str, Any]) -> None:
            log(step, record)
            self._record(r, step, record)

        return logged

    def _record(self, r: int, step: int, record: Mapping[str, Any]) -> None:
        if RETURN in record:
            self._last[r] = {k: float(record[k]) for k in (RETURN, BIAS_HARD) if k in record}
            self._show()
        if step > self._step:
            if self._step == 0:  # the first record (a resumed run's is past its checkpoint)
                self._bar.n = self._bar.last_print_n = self._bar.initial = step
                self._bar.refresh()
            else:
                self._bar.update(step - self._step)
            self._step = step

    def _show(self) -> None:
        evaluated = [last for last in self._last if RETURN in last]
        many = f" (mean of {len(evaluated)})" if len(self._last) > 1 and evaluated else ""
        ret = _mean([e[RETURN] for e in evaluated])
        bias = _mean([e[BIAS_HARD] for e in evaluated if BIAS_HARD in e])
        self._bar.set_postfix_str(
            f"last eval{many}: greedy return {_fmt(ret)}, bias_hard {_fmt(bias, _spec(BIAS_HARD))}",
            refresh=False,
        )

    def close(self) -> None:
        self._bar.close()


def final_numbers(record: Mapping[str, Any]) -> dict[str, float]:
    """The summary's numbers present in an evaluation record (exact ones only on tabular envs)."""
    return {k: float(record[k]) for k in FINAL_NUMBERS if k in record}


def last_evaluation(run_dir: Path) -> dict[str, Any]:
    """The run's last evaluation record in metrics.jsonl (empty when it has none)."""
    last: dict[str, Any] = {}
    try:
        with open(run_dir / METRICS_FILE, encoding="utf-8") as f:
            for line in f:
                if RETURN in line:
                    try:
                        last = json.loads(line)
                    except ValueError:
                        continue
    except OSError:
        pass
    return last


def wandb_sync_command(run_dirs: str) -> str:
    """How to upload the offline wandb runs of `run_dirs` (a run dir, or a glob of them)."""
    return f"wandb sync {run_dirs}/wandb/offline-run-*"


def analyze_command(where: Path | str) -> str:
    return f"softq-analyze {shlex.quote(str(where))} --out {shlex.quote(str(where))}/analysis"


def summary_block(result: Mapping[str, Any], run_dir: Path, wandb: WandbConfig) -> list[str]:
    """The lines a single run prints when it ends: status, final numbers, where, what next."""
    numbers = final_numbers(result.get("eval") or {})
    rows = [(FINAL_NUMBERS[k], _fmt(v, _spec(k))) for k, v in numbers.items()]
    if not numbers:
        rows.append(("greedy eval return", "- (no evaluation)"))
    rows.append(("run dir", str(run_dir)))
    rows += next_commands(str(run_dir), run_dir, wandb.mode == "offline")
    return [f"softq-train: run {result['status']} at step {result['step']}", *aligned(rows)]


def next_commands(run_dirs: str, analyze: Path, offline_wandb: bool) -> list[tuple[str, str]]:
    """What to run next: upload the offline wandb runs of `run_dirs`, analyse `analyze`."""
    upload = [("upload to wandb", wandb_sync_command(run_dirs))] if offline_wandb else []
    return [*upload, ("analyze", analyze_command(analyze))]


def aligned(rows: Sequence[tuple[str, str]]) -> list[str]:
    width = max(len(label) for label, _ in rows)
    return [f"  {label + ':':<{width + 1}}  {value}" for label, value in rows]


def job_line(label: str, result: Mapping[str, Any]) -> str:
    """One line for a job of a sweep, as it ends (the sweep's table follows at the end)."""
    ret = (result.get("eval") or {}).get(RETURN)
    return (
        f"softq-train: job {label}: {result['status']} at step {result['step']}, "
        f"greedy eval return {_fmt(ret)}"
    )


def sweep_table(rows: Sequence[tuple[str, str, str, float | None]]) -> list[str]:
    """The table a sweep ends with: (job, overrides, status, final greedy return) per row."""
    header = ("job", "overrides", "status", "return")
    cells = [header, *[(f"#{j}", o, s, _fmt(r)) for j, o, s, r in rows]]
    widths = [max(len(row[c]) for row in cells) for c in range(len(header))]
    return [
        "  " + "  ".join(
            cell.rjust(w) if c == 3 else cell.ljust(w)
            for c, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in cells
    ]
