"""Benchmark: learner updates fused into one jitted `lax.scan` call versus one call per update.

Both variants run the same updates (CartPole-sized type-2 network, batch 128, n = 3) on the same
buffer, side by side in one process; each is repeated and the median time per update is printed
with the ratio. Run: `python benchmarks/fused_updates.py [--updates 4 8 16] [--repeats 7]`.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import numpy as np

from softq_lab.core import replay
from softq_lab.core.learner import Hyper, LearnerSpec
from softq_lab.drivers.steps import TrainState, make_steps


def chunk(steps: int, rng: np.random.Generator) -> replay.Transition:
    return replay.Transition(
        obs=rng.normal(size=(steps, 1, 4)).astype(np.float32),
        action=rng.integers(2, size=(steps, 1)).astype(np.int32),
        reward=np.ones((steps, 1), np.float32),
        terminated=rng.random((steps, 1)) < 0.02,
        truncated=np.zeros((steps, 1), bool),
        next_obs=rng.normal(size=(steps, 1, 4)).astype(np.float32),
        next_mask=np.ones((steps, 1, 2), bool),
    )


def seconds_per_update(spec: LearnerSpec, updates_per_call: int, total: int, repeats: int) -> float:
    steps = make_steps(spec, 128, updates_per_call)
    store, learn = jax.jit(steps.store), jax.jit(steps.learn, donate_argnums=0)
    rng = np.random.default_rng(0)
    buffer = replay.init(50_000, 1, (4,), 2)
    ts = store(
        TrainState(steps.init(jax.random.key(0)), buffer, jax.random.key(1)), chunk(10_000, rng)
    )
    hyper = Hyper.make(tau=0.01, gamma=0.99, lr=1e-3)
    data = chunk(updates_per_call, rng)
    ts, m = learn(ts, data, hyper)  # compile
    jax.block_until_ready(m)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(total // updates_per_call):
            ts, m = learn(ts, data, hyper)
        jax.block_until_ready(m)
        times.append((time.perf_counter() - start) / total)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--total", type=int, default=512, help="updates per timing")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    spec = LearnerSpec(obs_shape=(4,), n_actions=2, n_step=3)
    base = seconds_per_update(spec, 1, args.total, args.repeats)
    print(f"{'updates per call':>17} {'µs per update (median)':>23} {'speed-up vs 1':>14}")
    print(f"{1:>17} {base * 1e6:>23.1f} {1.0:>14.2f}")
    for k in args.updates:
        t = seconds_per_update(spec, k, args.total, args.repeats)
        print(f"{k:>17} {t * 1e6:>23.1f} {base / t:>14.2f}")


if __name__ == "__main__":
    main()
