"""The host driver: one gymnasium env stepped in a Python loop, the learner in jitted calls.

Read top to bottom, `train` is the whole algorithm: act (ε-mixed Boltzmann on q), step the env, store
the 1-step transition, and every `train.every` steps hand the new transitions to one jitted call that
writes them to the replay buffer and runs `train.updates` updates in a `lax.scan` (n-step windows are
cut from the buffer inside that call). Every `eval.every` steps the `Evaluator` measures the greedy
return and the over-estimation diagnostics on its own envs.

The jitted functions depend only on the static `LearnerSpec` (and batch size, updates per call), so they
are built once per process and shared by every run of a sweep; τ, γ, the learning rate and the target
update are traced `Hyper` values.
"""

from __future__ import annotations

import functools
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from softq_lab.core import replay
from softq_lab.core.learner import Hyper, LearnerSpec, LearnerState, make_learner
from softq_lab.core.policy import linear_epsilon, select_action
from softq_lab.diagnostics.evaluator import Evaluator
from softq_lab.run.config import RunConfig

Logger = Callable[[int, dict[str, Any]], None]  # (global step, record) -> None


class TrainState(NamedTuple):
    learner: LearnerState
    buffer: replay.BufferState
    key: jax.Array  # the learner's sampling key


class Compiled(NamedTuple):
    init: Callable  # (key) -> LearnerState
    act: Callable  # (LearnerState, obs [E, d], key, eps, tau, mask) -> (actions [E], q [E, A], key)
    q_act: Callable  # (LearnerState, obs [B, d]) -> q [B, A], the q the policies act on
    store: Callable  # (TrainState, chunk) -> TrainState
    learn: Callable  # (TrainState, chunk, Hyper) -> (TrainState, mean metrics)


@functools.cache
def compiled(spec: LearnerSpec, batch_size: int, updates: int) -> Compiled:
    """The jitted functions for `spec`, built once per process (runs of a sweep share them)."""
    learner = make_learner(spec)

    def act(state, obs, key, epsilon, tau, mask):
        key, sub = jax.random.split(key)
        q = learner.q_act(state, obs)
        return select_action(sub, q, epsilon, tau, mask), q, key

    def store(ts: TrainState, chunk: replay.Transition) -> TrainState:
        return ts._replace(buffer=replay.add(ts.buffer, chunk))

    def learn(ts: TrainState, chunk: replay.Transition, hyper: Hyper):
        buffer = replay.add(ts.buffer, chunk)

        def one_update(state: LearnerState, key: jax.Array):
            window = replay.sample(buffer, key, batch_size, spec.n_step)
            return learner.update(state, window, hyper)

        key, *keys = jax.random.split(ts.key, updates + 1)
        state, metrics = jax.lax.scan(one_update, ts.learner, jnp.stack(keys))
        return TrainState(state, buffer, key), jax.tree.map(jnp.mean, metrics)

    return Compiled(
        init=jax.jit(learner.init),
        act=jax.jit(act),
        q_act=jax.jit(learner.q_act),
        store=jax.jit(store, donate_argnums=0),
        learn=jax.jit(learn, donate_argnums=0),
    )


def learner_spec(cfg: RunConfig, env: gym.Env) -> LearnerSpec:
    return LearnerSpec(
        obs_shape=tuple(env.observation_space.shape),
        n_actions=int(env.action_space.n),
        network=cfg.network,
        n_step=cfg.n_step,
        operator=cfg.operator,
        double=cfg.double,
        entropy_bonus=cfg.entropy_bonus,
        loss=cfg.loss,
        optimizer=cfg.optimizer,
        optimizer_kwargs=cfg.optimizer_kwargs,
        max_grad_norm=cfg.max_grad_norm,
    )


def _chunk(steps: list[tuple]) -> replay.Transition:
    """T host-side steps -> a Transition with leaves [T, 1, ...] (one env stream)."""
    obs, action, reward, terminated, truncated, next_obs = (
        np.asarray(x) for x in zip(*steps, strict=True)
    )
    return replay.Transition(
        obs=obs[:, None].astype(np.float32),
        action=action[:, None].astype(np.int32),
        reward=reward[:, None].astype(np.float32),
        terminated=terminated[:, None],
        truncated=truncated[:, None],
        next_obs=next_obs[:, None].astype(np.float32),
    )


def _progress_bar(cfg: RunConfig) -> Any:
    mode = cfg.logger.progress
    if mode == "off" or (mode == "auto" and not sys.stderr.isatty()):
        return None
    from tqdm import tqdm

    return tqdm(total=cfg.total_steps, unit="step", dynamic_ncols=True, file=sys.stderr)


def train(cfg: RunConfig, env: gym.Env, log: Logger) -> dict[str, float]:
    """Train on `env` for cfg.total_steps env steps, logging every record; returns the last eval."""
    spec = learner_spec(cfg, env)
    fns = compiled(spec, cfg.batch_size, cfg.train_updates)
    hyper = Hyper.make(cfg.tau, cfg.gamma, cfg.lr, cfg.polyak, cfg.target_period)
    explore = cfg.exploration

    key_init, key_learn, key_act = jax.random.split(jax.random.key(cfg.seed), 3)
    ts = TrainState(
        learner=fns.init(key_init),
        buffer=replay.init(cfg.buffer_capacity, 1, spec.obs_shape),
        key=key_learn,
    )
    evaluator = Evaluator(cfg, env, fns.act, fns.q_act)

    bar = _progress_bar(cfg)
    obs, info = env.reset(seed=cfg.seed)
    pending: list[tuple] = []
    interval: list[dict[str, jax.Array]] = []
    recent_returns: deque[float] = deque(maxlen=20)
    episode, ep_return, ep_length, updates = 0, 0.0, 0, 0
    last_eval: dict[str, float] = {}
    start = tick = time.perf_counter()
    tick_step = 0

    for step in range(1, cfg.total_steps + 1):  # `step` env steps done after this iteration
        epsilon = linear_epsilon(
            step - 1, explore.eps_start, explore.eps_end, explore.eps_decay_steps
        )
        mask = info.get("action_mask")
        action, _, key_act = fns.act(
            ts.learner,
            obs[None],
            key_act,
            epsilon,
            cfg.behaviour_tau,
            None if mask is None else mask[None],
        )
        action = int(action[0])
        next_obs, reward, terminated, truncated, info = env.step(action)
        evaluator.observe(obs, action)
        pending.append((obs, action, reward, terminated, truncated, next_obs))
        ep_return += float(reward)
        ep_length += 1

        if terminated or truncated:
            log(
                step,
                {
                    "train/episode_return": ep_return,
                    "train/episode_length": ep_length,
                    "train/episode": episode,
                    **info.get("metrics", {}),
                },
            )
            recent_returns.append(ep_return)
            episode, ep_return, ep_length = episode + 1, 0.0, 0
            obs, info = env.reset()
        else:
            obs = next_obs

        if len(pending) == cfg.train_every:
            if step >= cfg.learning_starts:
                hyper = hyper._replace(lr=jnp.float32(cfg.lr_at(step)))
                ts, metrics = fns.learn(ts, _chunk(pending), hyper)
                interval.append(metrics)
                updates += cfg.train_updates
            else:
                ts = fns.store(ts, _chunk(pending))
            pending = []

        if step % cfg.logger.every == 0:
            now = time.perf_counter()
            record: dict[str, Any] = {"train/epsilon": epsilon, "learner/updates": updates}
            if interval:
                means = jax.device_get(jax.tree.map(lambda *m: jnp.mean(jnp.stack(m)), *interval))
                record.update({f"learner/{k}": v for k, v in means.items()})
                interval = []
            sps = (step - tick_step) / (now - tick)
            log(step, {**record, "perf/sps": sps, "perf/elapsed_s": now - start})
            tick, tick_step = now, step
            if bar is not None:
                mean_ret = np.mean(recent_returns) if recent_returns else float("nan")
                bar.set_postfix(sps=f"{sps:.0f}", ret=f"{mean_ret:.1f}", refresh=False)
                bar.update(cfg.logger.every)

        if step % cfg.eval.every == 0 or step == cfg.total_steps:
            last_eval = evaluator(ts.learner)
            log(step, last_eval)

    if bar is not None:
        bar.close()
    evaluator.close()
    return last_eval
