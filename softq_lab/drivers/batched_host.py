"""The batched host driver: any gymnasium env, a batch of runs stepped together in one Python loop.

For envs with no JAX version (Blackjack, LunarLander, a user's own env). Each run has its own env;
per env step, one vmapped `act` serves every run, and every `train.every` steps one vmapped `learn`
call writes the new transitions and runs `train.updates` updates for every run. The runs of a batch
share the static structure (`device.program_key`); τ, γ, the learning rate, the ε schedule and the
target update are per-run traced values. One run alone is the plain host driver (`host.train`).

Read top to bottom, `train_batch` is the whole algorithm: act (ε-mixed Boltzmann on q, masked),
step the envs, keep the 1-step transitions, learn, log each run's episodes and learner means, and
every `eval.every` steps evaluate each run with its own `Evaluator`.
"""

from __future__ import annotations

import functools
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from softq_lab.core import replay, schedules
from softq_lab.core.learner import Hyper, LearnerSpec
from softq_lab.diagnostics.evaluator import Evaluator
from softq_lab.drivers.steps import TrainState, keep_if, learner_spec, make_steps
from softq_lab.run.config import RunConfig

Logger = Callable[[int, dict[str, Any]], None]  # (global step, record) -> None


class Compiled(NamedTuple):
    init: Callable  # (keys [R]) -> LearnerState [R]
    act: Callable  # (LearnerState [R], obs [R, 1, d], keys [R], eps [R], tau [R], mask) -> ...
    store: Callable  # (TrainState [R], chunk [R, T, 1, ...]) -> TrainState [R]
    learn: Callable  # (TrainState [R], chunk, Hyper [R], running [R]) -> (TrainState, metrics)
    act_one: Callable  # one run's act and q_act, for its evaluator
    q_act_one: Callable


@functools.cache
def compiled(spec: LearnerSpec, batch_size: int, updates: int) -> Compiled:
    """The jitted functions for `spec`, built once per process (every batch shares them)."""
    steps = make_steps(spec, batch_size, updates)

    def learn(ts: TrainState, chunk: replay.Transition, hyper: Hyper, running: jax.Array):
        """`steps.learn`; the learner of a run that has stopped stays as it was."""
        new, metrics = steps.learn(ts, chunk, hyper)
        return new._replace(learner=keep_if(running, new.learner, ts.learner)), metrics

    return Compiled(
        init=jax.jit(jax.vmap(steps.init)),
        act=jax.jit(jax.vmap(steps.act)),
        store=jax.jit(jax.vmap(steps.store), donate_argnums=0),
        learn=jax.jit(jax.vmap(learn), donate_argnums=0),
        act_one=jax.jit(steps.act),
        q_act_one=jax.jit(steps.q_act),
    )


def _stack(xs: Sequence[Any]) -> Any:
    return jax.tree.map(lambda *x: jnp.stack(x), *xs)


def _take(tree: Any, r: int) -> Any:
    return jax.tree.map(lambda x: x[r], tree)


def _chunk(pending: list[list[tuple]]) -> replay.Transition:
    """Per run, T host-side steps -> a Transition with leaves [R, T, 1, ...] (one env stream each)."""
    fields = [
        np.asarray(x) for x in zip(*[list(zip(*p, strict=True)) for p in pending], strict=True)
    ]
    obs, action, reward, terminated, truncated, next_obs, next_mask = fields
    return replay.Transition(
        obs=obs[:, :, None].astype(np.float32),
        action=action[:, :, None].astype(np.int32),
        reward=reward[:, :, None].astype(np.float32),
        terminated=terminated[:, :, None],
        truncated=truncated[:, :, None],
        next_obs=next_obs[:, :, None].astype(np.float32),
        next_mask=next_mask[:, :, None].astype(bool),
    )


def _progress_bar(cfg: RunConfig, runs: int) -> Any:
    mode = cfg.logger.progress
    if mode == "off" or (mode == "auto" and not sys.stderr.isatty()):
        return None
    from tqdm import tqdm

    unit = "step" if runs == 1 else f"step×{runs}"
    return tqdm(total=cfg.total_steps, unit=unit, dynamic_ncols=True, file=sys.stderr)


def train_batch(
    cfgs: Sequence[RunConfig], envs: Sequence[gym.Env], logs: Sequence[Logger]
) -> list[dict[str, Any]]:
    """Train run r of `cfgs` on `envs[r]`, logging to `logs[r]`; the runs must share their static
    settings. Returns per run `{"status", "step", "eval", "error"}` (status `finished`, or
    `diverged` when a learner metric went non-finite: its records stop, its batch-mates go on)."""
    cfg, n_runs = cfgs[0], len(cfgs)
    spec = learner_spec(cfg, envs[0].observation_space.shape, envs[0].action_space.n)
    fns = compiled(spec, cfg.batch_size, cfg.train_updates)
    n_actions = spec.n_actions
    hyper = _stack([Hyper.make(c.tau, c.gamma, c.lr, c.polyak, c.target_period) for c in cfgs])
    lr0 = np.array([c.lr for c in cfgs], np.float32)
    lr_linear = np.array([c.lr_schedule == "linear" for c in cfgs])
    explore = [c.exploration for c in cfgs]
    eps_start = np.array([e.eps_start for e in explore], np.float32)
    eps_end = np.array([e.eps_end for e in explore], np.float32)
    eps_decay = np.array([e.eps_decay_steps for e in explore], np.int32)
    behaviour_tau = jnp.asarray([c.behaviour_tau for c in cfgs], jnp.float32)
    max_episodes = [c.total_episodes or np.inf for c in cfgs]

    keys = [jax.random.split(jax.random.key(c.seed), 3) for c in cfgs]
    key_init, key_learn, key_act = (jnp.stack([k[i] for k in keys]) for i in range(3))
    ts = TrainState(
        learner=fns.init(key_init),
        buffer=_stack([replay.init(cfg.buffer_capacity, 1, spec.obs_shape, n_actions)] * n_runs),
        key=key_learn,
    )
    evaluators = [
        Evaluator(c, env, fns.act_one, fns.q_act_one) for c, env in zip(cfgs, envs, strict=True)
    ]

    def mask_of(info: dict[str, Any]) -> np.ndarray:
        mask = info.get("action_mask")
        return np.ones(n_actions, bool) if mask is None else np.asarray(mask, bool)

    resets = [env.reset(seed=c.seed) for c, env in zip(cfgs, envs, strict=True)]
    obs = [o for o, _ in resets]
    masks = [mask_of(i) for _, i in resets]
    status = ["running"] * n_runs
    stop_step = [0] * n_runs
    error: list[str | None] = [None] * n_runs
    last_eval: list[dict[str, float]] = [{} for _ in cfgs]
    pending: list[list[tuple]] = [[] for _ in cfgs]
    interval: list[dict[str, jax.Array]] = []
    episode, ep_return, ep_length = [0] * n_runs, [0.0] * n_runs, [0] * n_runs
    updates = 0
    recent_returns: deque[float] = deque(maxlen=20 * n_runs)  # the bar's `ret`: recent episodes
    bar = _progress_bar(cfg, n_runs)
    start = tick = time.perf_counter()
    tick_step = 0

    for step in range(1, cfg.total_steps + 1):  # `step` env steps done after this iteration
        epsilon = schedules.linear_epsilon(step - 1, eps_start, eps_end, eps_decay)
        actions, _, key_act = fns.act(
            ts.learner,
            np.stack(obs)[:, None],
            key_act,
            epsilon,
            behaviour_tau,
            np.stack(masks)[:, None],
        )
        actions = np.asarray(actions)[:, 0]
        ending: list[int] = []
        for r, env in enumerate(envs):
            a = int(actions[r])
            next_obs, reward, terminated, truncated, info = env.step(a)
            next_mask = mask_of(info)
            if status[r] == "running":
                evaluators[r].observe(obs[r], a)
            pending[r].append((obs[r], a, reward, terminated, truncated, next_obs, next_mask))
            ep_return[r] += float(reward)
            ep_length[r] += 1
            if terminated or truncated:
                if status[r] == "running":
                    logs[r](step, {
                        "train/episode_return": ep_return[r],
                        "train/episode_length": ep_length[r],
                        "train/episode": episode[r],
                        **info.get("metrics", {}),
                    })  # fmt: skip
                    if episode[r] + 1 >= max_episodes[r]:
                        ending.append(r)
                recent_returns.append(ep_return[r])
                episode[r], ep_return[r], ep_length[r] = episode[r] + 1, 0.0, 0
                obs[r], info = env.reset()
                masks[r] = mask_of(info)
            else:
                obs[r], masks[r] = next_obs, next_mask

        if len(pending[0]) == cfg.train_every:
            if step >= cfg.learning_starts:
                lr = schedules.learning_rate(step, lr0, lr_linear, cfg.total_steps)
                running = np.array([s == "running" for s in status])
                ts, metrics = fns.learn(ts, _chunk(pending), hyper._replace(lr=lr), running)
                interval.append(metrics)
                updates += cfg.train_updates
            else:
                ts = fns.store(ts, _chunk(pending))
            pending = [[] for _ in cfgs]

        if step % cfg.logger.every == 0:
            now = time.perf_counter()
            sps = (step - tick_step) / (now - tick)
            means = {}
            if interval:
                means = jax.device_get(
                    jax.tree.map(lambda *m: jnp.mean(jnp.stack(m), 0), *interval)
                )
                interval = []
            for r in range(n_runs):
                if status[r] != "running":
                    continue
                record: dict[str, Any] = {
                    "train/epsilon": float(epsilon[r]),
                    "learner/updates": updates,
                }
                learner = {k: float(v[r]) for k, v in means.items()}
                bad = [k for k, v in learner.items() if not np.isfinite(v)]
                if bad:
                    status[r], stop_step[r] = "diverged", step
                    error[r] = f"non-finite learner/{bad[0]} by step {step}"
                    continue
                record.update({f"learner/{k}": v for k, v in learner.items()})
                logs[r](step, {**record, "perf/sps": sps, "perf/elapsed_s": now - start})
            tick, tick_step = now, step
            if bar is not None:
                mean_ret = np.mean(recent_returns) if recent_returns else float("nan")
                bar.set_postfix(sps=f"{sps:.0f}", ret=f"{mean_ret:.1f}", refresh=False)
                bar.update(cfg.logger.every)

        eval_due = step % cfg.eval.every == 0 or step == cfg.total_steps
        for r in range(n_runs):
            if status[r] != "running" or not (eval_due or r in ending):
                continue
            last_eval[r] = evaluators[r](_take(ts.learner, r))
            logs[r](step, last_eval[r])
            if r in ending or step == cfg.total_steps:
                status[r], stop_step[r] = "finished", step
        if all(s != "running" for s in status):
            break

    if bar is not None:
        bar.close()
    for ev in evaluators:
        ev.close()
    return [
        {"status": status[r], "step": stop_step[r], "eval": last_eval[r], "error": error[r]}
        for r in range(n_runs)
    ]
