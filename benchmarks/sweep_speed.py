"""Benchmark: how fast sweeps run, every figure measured side by side in this one process.

Workload A: CartPole, type-2 64×64 MLP, batch 32, n = 1, one update per env step.
Workload B: the default config (128×128, batch 128, n = 3, 4 updates every 4 steps).

Printed, each the median of `--repeats` timings after compilation:
1. update floors: a bare hand-written flax + optax soft-Q update (no metrics, no n-step) and the
   learner's own update (`steps.update`, windows sampled from a filled buffer), one run and vmapped;
2. the device driver, one run and 32 runs: env steps/s and run-updates/s, and where the time goes
   (act + env + buffer without updates, updates, evaluation, host-side record writing);
3. the batched host driver (gymnasium CartPole) with 8 runs against one run alone;
4. with `--sweep`: a whole 4 τ × 8 seed sweep (workload A, or B with `--sweep-workload B`) through
   `softq-train -m … hydra/launcher=batched` against the same 32 runs one process each (process
   start, compile, evaluation and files included; the one-process-each side runs 2 jobs and is
   scaled to 32 unless `--sweep-all`), and where the batched sweep's time went;
5. start-up to the first env step of a device run, in a fresh process with a warm compilation cache.

`--quick` runs every part tiny, workload A only (correctness: CI runs it; its numbers mean nothing).
Run: `python benchmarks/sweep_speed.py [--quick] [--sweep] [--repeats 3]`; only the sweep of workload
B: `python benchmarks/sweep_speed.py --only-sweep --sweep-workload B --sweep-all`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from softq_lab.core import replay
from softq_lab.core.learner import Hyper
from softq_lab.drivers import batched_host, device
from softq_lab.drivers.steps import TrainState, learner_spec, make_steps
from softq_lab.envs import classic_control
from softq_lab.envs import make as make_gym
from softq_lab.run.config import RunConfig, from_dict
from softq_lab.run.train import CONFIG_DIR

ROOT = Path(__file__).resolve().parents[1]
WORKLOAD_A = [
    "train.every=1",
    "train.updates=1",
    "batch_size=32",
    "n_step=1",
    "network.hidden_sizes=[64,64]",
]
WORKLOAD_B: list[str] = []
SCAN = 50  # updates per timed scan


def config(*overrides: str) -> RunConfig:
    with initialize_config_dir(str(CONFIG_DIR), version_base=None):
        cfg = compose("config", overrides=list(overrides))
    return from_dict(OmegaConf.to_container(cfg, resolve=True))


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median seconds of `fn()` (its result blocked on), after one untimed call that compiles."""
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# --- 1. update floors ---------------------------------------------------------------------------


class MLP(nn.Module):
    hidden: tuple[int, ...]
    n_actions: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for h in self.hidden:
            x = nn.relu(nn.Dense(h)(x))
        return nn.Dense(self.n_actions)(x)


def bare_update_seconds(hidden: tuple[int, ...], batch: int, runs: int, repeats: int) -> float:
    """Seconds per update (per run) of the floor: a hand-written soft-Q step, nothing else."""
    net, tx = MLP(hidden, 2), optax.adam(1e-3)
    rng = np.random.default_rng(0)
    obs = jnp.asarray(rng.normal(size=(SCAN, batch, 4)), jnp.float32)
    act = jnp.asarray(rng.integers(2, size=(SCAN, batch)))
    rew = jnp.ones((SCAN, batch))
    done = jnp.asarray(rng.random((SCAN, batch)) < 0.02)

    def init(key):
        params = net.init(key, obs[0])
        return params, params, tx.init(params)

    def step(carry, data):
        params, target, opt = carry
        o, a, r, d = data

        def loss(p):
            q = jnp.take_along_axis(net.apply(p, o), a[:, None], -1)[:, 0]
            v = 0.01 * jax.nn.logsumexp(net.apply(target, o) / 0.01, axis=-1)
            g = jax.lax.stop_gradient(r + 0.99 * (1 - d) * v)
            return jnp.mean(optax.huber_loss(g - q))

        grads = jax.grad(loss)(params)
        updates, opt = tx.update(grads, opt, params)
        params = optax.apply_updates(params, updates)
        return (params, optax.incremental_update(params, target, 0.005), opt), None

    def scan(carry):
        return jax.lax.scan(step, carry, (obs, act, rew, done))[0]

    keys = jax.random.split(jax.random.key(0), runs)
    carry = jax.vmap(init)(keys)
    run = jax.jit(jax.vmap(scan))
    return median_time(lambda: run(carry), repeats) / SCAN / runs


def learner_update_seconds(cfg: RunConfig, runs: int, repeats: int) -> float:
    """Seconds per update (per run) of the learner's own fused update on a filled buffer."""
    env = classic_control.cartpole()
    spec = learner_spec(cfg, env.obs_shape, env.n_actions)
    steps = make_steps(spec, cfg.batch_size, SCAN)
    rng = np.random.default_rng(0)
    n = 5_000
    chunk = replay.Transition(
        obs=rng.normal(size=(n, 1, 4)).astype(np.float32),
        action=rng.integers(2, size=(n, 1)).astype(np.int32),
        reward=np.ones((n, 1), np.float32),
        terminated=rng.random((n, 1)) < 0.02,
        truncated=np.zeros((n, 1), bool),
        next_obs=rng.normal(size=(n, 1, 4)).astype(np.float32),
        next_mask=np.ones((n, 1, 2), bool),
    )

    def init(key):
        buffer = replay.add(replay.init(cfg.buffer_capacity, 1, (4,), 2), chunk)
        return TrainState(steps.init(key), buffer, key)

    ts = jax.jit(jax.vmap(init))(jax.random.split(jax.random.key(0), runs))
    hyper = jax.tree.map(lambda x: jnp.broadcast_to(x, (runs,)), Hyper.make(0.01, 0.99, 1e-3))
    update = jax.jit(jax.vmap(steps.update))
    return median_time(lambda: update(ts, hyper), repeats) / SCAN / runs


# --- 2. the device driver -----------------------------------------------------------------------


def device_rates(overrides: list[str], runs: int, steps: int, repeats: int) -> dict[str, float]:
    """Env steps/s per run and run-updates/s of a batch, with the time split by part."""
    env = classic_control.cartpole()
    cfgs = [config(*overrides, f"seed={s}", f"tau={0.01 * (s % 4)}") for s in range(runs)]
    cfg = cfgs[0]
    program = dataclasses.replace(device.Program.of(cfg, env), learning_starts=0)
    fns = device.compiled(program)
    params = device.place(device._pad([device.RunParams.of(c) for c in cfgs], 1))
    runs_state = fns.init(params)
    # fill the buffer once, so that every timed chunk learns from a realistic buffer
    runs_state, _ = fns.chunk(runs_state, params, np.int32(0), steps)
    holder = {"runs": runs_state}

    def chunk(start: int) -> Callable[[], object]:
        def go():
            holder["runs"], out = fns.chunk(holder["runs"], params, np.int32(start), steps)
            return out

        return go

    learning = median_time(chunk(steps), repeats)
    acting_only = device.compiled(dataclasses.replace(program, learning_starts=10**9))
    holder_act = {"runs": acting_only.init(params)}

    def act_chunk():
        holder_act["runs"], out = acting_only.chunk(holder_act["runs"], params, np.int32(0), steps)
        return out

    acting = median_time(act_chunk, repeats)
    evaluation = median_time(lambda: fns.evaluate(holder["runs"], params)[1], repeats)
    updates = steps // cfg.train_every * cfg.train_updates
    return {
        "env_steps_per_s_per_run": steps / learning,
        "run_updates_per_s": updates * runs / learning,
        "seconds_per_update_per_run": (learning - acting) / updates / runs,
        "act_env_buffer_s": acting,
        "update_s": learning - acting,
        "eval_s": evaluation,
        "chunk_s": learning,
    }


# --- 3. the batched host driver -----------------------------------------------------------------


def host_rate(overrides: list[str], runs: int, steps: int) -> float:
    """Aggregate env steps/s of `runs` gymnasium runs in one batched host loop (compile excluded)."""
    cfgs = [config(*overrides, f"seed={s}", f"total_steps={steps}", f"eval.every={10 * steps}",
                   "eval.episodes=1", "buffer.learning_starts=0", "logger.progress=off")
            for s in range(runs)]  # fmt: skip
    envs = [make_gym.make(c.env) for c in cfgs]
    warm = [config(*overrides, "total_steps=50", "eval.episodes=1", "buffer.learning_starts=0",
                   "logger.progress=off") for _ in range(runs)]  # fmt: skip
    batched_host.train_batch(warm, envs, [lambda s, r: None] * runs)  # compile
    start = time.perf_counter()
    batched_host.train_batch(cfgs, envs, [lambda s, r: None] * runs)
    elapsed = time.perf_counter() - start
    for env in envs:
        env.close()
    return runs * steps / elapsed


# --- 4. a whole sweep through the command line ----------------------------------------------------


def softq_train(args: list[str], cwd: Path) -> float:
    env = {**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu"),
           "WANDB_MODE": "offline"}  # fmt: skip
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "softq_lab.run.train", *args], cwd=cwd, env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - start


def sweep_times(
    workload: list[str], steps: int, taus: list[str], seeds: int, alone_jobs: int
) -> tuple[float, float, dict[str, float]]:
    """(batched sweep wall time, one-process-each wall time scaled to the whole sweep, where the
    batched sweep's time went: its first job's last `perf.jsonl` record)."""
    common = [*workload, f"total_steps={steps}", f"buffer.learning_starts={min(1000, steps // 5)}",
              f"logger.every={min(1000, steps // 5)}", "logger.progress=off"]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        batched = softq_train(["-m", *common, f"tau={','.join(taus)}", f"seed=range({seeds})",
                               "hydra/launcher=batched", f"hydra.sweep.dir={tmp}/batched"],
                              Path(tmp))  # fmt: skip
        perf = (Path(tmp) / "batched" / "0" / "perf.jsonl").read_text().splitlines()
        spent = json.loads(perf[-1])
        alone = []
        for j in range(alone_jobs):
            tau, seed = taus[j % len(taus)], j // len(taus)
            alone.append(softq_train([*common, f"tau={tau}", f"seed={seed}",
                                      f"hydra.run.dir={tmp}/alone{j}"], Path(tmp)))  # fmt: skip
    total = len(taus) * seeds
    return batched, statistics.mean(alone) * total, spent


# --- 5. start-up -----------------------------------------------------------------------------------


# Run in a fresh process: only what a device run needs before its first env step is imported.
STARTUP_PROBE = """
import json, os, time
OVERRIDES = {overrides}
from softq_lab.drivers import device
from softq_lab.envs import classic_control
from softq_lab.run.config import from_dict
from softq_lab.run.train import CONFIG_DIR, enable_compilation_cache
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
import numpy as np, jax
enable_compilation_cache()
with initialize_config_dir(str(CONFIG_DIR), version_base=None):
    cfg = from_dict(OmegaConf.to_container(compose("config", overrides=OVERRIDES), resolve=True))
env = classic_control.cartpole()
program = device.Program.of(cfg, env)
fns = device.compiled(program)
params = device.place(device._pad([device.RunParams.of(cfg)], 1))
_, out = fns.chunk(fns.init(params), params, np.int32(0), 1)
jax.block_until_ready(out)
with open("/proc/self/stat") as f:
    start_ticks = int(f.read().split(")")[1].split()[19])
with open("/proc/uptime") as f:
    uptime = float(f.read().split()[0])
print(json.dumps({"startup_s": uptime - start_ticks / os.sysconf("SC_CLK_TCK")}))
"""


def startup_seconds(repeats: int) -> float:
    overrides = [*WORKLOAD_A, "total_steps=1000", "buffer.learning_starts=999"]
    cmd = [sys.executable, "-c", STARTUP_PROBE.replace("{overrides}", repr(overrides))]
    env = {**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
    subprocess.run(cmd, check=True, env=env, capture_output=True)  # warms the cache
    times = []
    for _ in range(repeats):
        out = subprocess.run(cmd, check=True, env=env, capture_output=True, text=True).stdout
        times.append(json.loads(out.strip().splitlines()[-1])["startup_s"])
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks, not timings")
    parser.add_argument("--sweep", action="store_true", help="also time a whole CLI sweep")
    parser.add_argument("--sweep-all", action="store_true", help="run all 32 one-process jobs")
    parser.add_argument("--sweep-workload", choices=["A", "B"], default="A",
                        help="the workload of the whole-sweep timing (default A)")  # fmt: skip
    parser.add_argument("--only-sweep", action="store_true",
                        help="skip parts 1-3 and the start-up: time the whole sweep only")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    quick = args.quick
    repeats = 1 if quick else args.repeats
    runs = 4 if quick else 32
    steps = 200 if quick else 2_000
    print(f"device: {jax.devices()[0].platform} ×{jax.device_count()}  "
          f"(jax {jax.__version__}){'  QUICK: numbers mean nothing' if quick else ''}")  # fmt: skip

    if not args.only_sweep:
        workloads = [("A", WORKLOAD_A, (64, 64), 32), ("B", WORKLOAD_B, (128, 128), 128)]
        for name, overrides, hidden, batch in workloads[:1] if quick else workloads:
            print_workload(name, overrides, hidden, batch, runs, steps, repeats)
        host_one = host_rate(WORKLOAD_A, 1, 100 if quick else 2_000)
        host_eight = host_rate(WORKLOAD_A, 8, 100 if quick else 2_000)
        print(
            f"\nbatched host driver (gymnasium CartPole, workload A): 1 run {host_one:.0f} env "
            f"steps/s; 8 runs {host_eight:.0f} env steps/s in all = {host_eight / host_one:.2f}× one run"
        )

    if args.sweep or args.only_sweep or quick:
        sweep_steps = 500 if quick else 20_000
        taus, seeds = (["0", "0.1"], 1) if quick else (["0", "0.01", "0.1", "1"], 8)
        n_alone = len(taus) * seeds if (args.sweep_all or quick) else 2
        workload = WORKLOAD_A if args.sweep_workload == "A" else WORKLOAD_B
        batched, alone, spent = sweep_times(workload, sweep_steps, taus, seeds, n_alone)
        scaled = (
            ""
            if n_alone == len(taus) * seeds
            else f" (mean of {n_alone} jobs × {len(taus) * seeds})"
        )
        print(
            f"\nsweep {len(taus)} τ × {seeds} seeds, workload {args.sweep_workload}, "
            f"{sweep_steps} steps each: batched {batched:.1f} s; one process each {alone:.1f} s"
            f"{scaled}; {alone / batched:.1f}× faster batched"
        )
        device_s, eval_s, elapsed = (spent[f"perf/{k}"] for k in ("device_s", "eval_s", "elapsed_s"))
        print(
            f"  where the batched sweep's {batched:.1f} s went: training scan {device_s:.1f} s "
            f"(update vs act+env+buffer: see part 2), evaluation {eval_s:.1f} s, host I/O "
            f"{elapsed - device_s - eval_s:.1f} s (records, files), and {batched - elapsed:.1f} s "
            f"before the first step and after the last (process, Hydra, job dirs, wandb, the "
            f"compiles not in the scan's first call)"
        )
    if not args.only_sweep:
        print(
            f"\nstart-up to the first env step (warm compilation cache): "
            f"{startup_seconds(1 if quick else 3):.2f} s"
        )


def print_workload(
    name: str,
    overrides: list[str],
    hidden: tuple[int, ...],
    batch: int,
    runs: int,
    steps: int,
    repeats: int,
) -> None:
    """Parts 1 and 2 for one workload: the update floors and the device driver beside them."""
    cfg = config(*overrides)
    bare = bare_update_seconds(hidden, batch, 1, repeats)
    bare_v = bare_update_seconds(hidden, batch, runs, repeats)
    own = learner_update_seconds(cfg, 1, repeats)
    own_v = learner_update_seconds(cfg, runs, repeats)
    one = device_rates(overrides, 1, steps, repeats)
    many = device_rates(overrides, runs, steps, repeats)
    per_update = 1 / one["env_steps_per_s_per_run"] / (cfg.train_updates / cfg.train_every)
    print(f"\nworkload {name}  ({' '.join(overrides) or 'defaults'})")
    print(
        f"  update floor, bare flax+optax:   {bare * 1e6:8.1f} µs/update   "
        f"vmapped ×{runs}: {1 / bare_v:9.0f} run-updates/s"
    )
    print(
        f"  learner update (steps.update):  {own * 1e6:8.1f} µs/update   "
        f"vmapped ×{runs}: {1 / own_v:9.0f} run-updates/s   ({own / bare:.2f}× the bare floor)"
    )
    print(
        f"  device driver, 1 run:           {one['env_steps_per_s_per_run']:8.0f} env steps/s"
        f"   per env step {1e6 / one['env_steps_per_s_per_run']:.1f} µs = "
        f"{per_update / bare:.2f}× the bare update floor per update"
    )
    print(
        f"  device driver, {runs} runs:        {many['run_updates_per_s']:8.0f} run-updates/s "
        f"({many['run_updates_per_s'] * own_v:.2f}× the vmapped learner floor, "
        f"{many['run_updates_per_s'] * bare_v:.2f}× the vmapped bare floor); "
        f"{many['env_steps_per_s_per_run'] * runs:.0f} env steps/s in all"
    )
    chunk = many["chunk_s"]
    print(f"  where a {steps}-step chunk of {runs} runs goes ({chunk:.3f} s): "
          f"act+env+buffer {many['act_env_buffer_s'] / chunk:.0%}, "
          f"update {many['update_s'] / chunk:.0%}; one evaluation: {many['eval_s']:.3f} s")  # fmt: skip


if __name__ == "__main__":
    main()
