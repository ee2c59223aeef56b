"""Time loading a synthetic sweep: `python benchmarks/analysis_load.py [--runs 100] [--rows 10000]`.

Writes RUNS run directories of ROWS metrics.jsonl lines each (a mix of episode, logger and eval
records, like the trainer's) into a temporary directory, then times `load_runs` without the cache,
while filling it, and from it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from softq_lab.analysis.load import load_runs


def write_synthetic_run(run_dir: Path, rows: int, seed: int, tau: float) -> None:
    """A finished run with `rows` metrics lines: 70% episode ends, 20% logger, 10% eval records;
    logger and eval records share the step of the record before them (to be merged), sometimes
    repeating a key at one step."""
    rng = np.random.default_rng(seed)
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(
        f"env:\n  name: cartpole\nnetwork:\n  name: type1\nn_step: 1\ngamma: 0.99\ntau: {tau}\n"
        f"operator: soft\nseed: {seed}\nlr: 0.001\ntotal_steps: {rows * 10}\n"
    )
    kinds = rng.choice(3, size=rows, p=[0.7, 0.2, 0.1])
    values = rng.normal(size=(rows, 6))
    lines = []
    step = 0
    for i, (kind, v) in enumerate(zip(kinds, values, strict=True)):
        if kind == 0:  # logger / eval records share the step of the record before them
            step += 10
        if kind == 0:
            rec = {
                "step": step,
                "train/episode_return": v[0],
                "train/episode_length": 20,
                "train/episode": i,
            }
        elif kind == 1:
            rec = {
                "step": step,
                "train/epsilon": 0.1,
                "learner/updates": i,
                "learner/loss": v[1],
                "learner/td_error": v[2],
                "learner/q_mean": v[3],
                "learner/grad_norm": v[4],
            }
        else:
            rec = {
                "step": step,
                "eval/return_mean": v[5],
                "eval/return_std": 1.0,
                "overestimation/bias_hard": v[0],
                "overestimation/bias_soft": v[1],
                "overestimation/q_start": v[2],
                "overestimation/return_start_hard": v[3],
            }
        lines.append(json.dumps(rec))
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (run_dir / "status.json").write_text('{"status": "finished"}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "sweep"
        t0 = time.perf_counter()
        for i in range(args.runs):
            write_synthetic_run(root / str(i), args.rows, seed=i % 5, tau=[0, 0.1, 1.0][i % 3])
        print(f"wrote {args.runs} runs x {args.rows} lines in {time.perf_counter() - t0:.1f} s")
        cache = Path(tmp) / "cache"
        for label, kwargs in [
            ("no cache", {"cache": False}),
            ("filling cache", {"cache_dir": cache}),
            ("from cache", {"cache_dir": cache}),
        ]:
            t0 = time.perf_counter()
            runs = load_runs([root], **kwargs)
            took = time.perf_counter() - t0
            print(f"{label:>14}: {took:.2f} s ({len(runs.runs)} runs, {len(runs.metrics)} rows)")


if __name__ == "__main__":
    main()
