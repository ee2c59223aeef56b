"""What every driver does to one run, as pure functions: act, store, learn.

The host driver jits them, the batched host driver vmaps and jits them, the device driver scans and
vmaps them: one definition of acting and learning for every loop. All depend only on the static
`LearnerSpec`, batch size and updates per call; τ, γ, the learning rate and the target update are
traced `Hyper` values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from softq_lab.core import replay
from softq_lab.core.learner import Hyper, LearnerSpec, LearnerState, make_learner
from softq_lab.core.policy import select_action
from softq_lab.run.config import RunConfig


class TrainState(NamedTuple):
    learner: LearnerState
    buffer: replay.BufferState
    key: jax.Array  # the learner's sampling key


class Steps(NamedTuple):
    init: Callable  # (key) -> LearnerState
    act: Callable  # (LearnerState, obs [E, d], key, eps, tau, mask) -> (actions [E], q [E, A], key)
    q_act: Callable  # (LearnerState, obs [B, d]) -> q [B, A], the q the policies act on
    store: Callable  # (TrainState, chunk) -> TrainState
    update: Callable  # (TrainState, Hyper) -> (TrainState, mean metrics), on the stored buffer
    learn: Callable  # (TrainState, chunk, Hyper) -> (TrainState, mean metrics): store, then update


def learner_spec(cfg: RunConfig, obs_shape: tuple[int, ...], n_actions: int) -> LearnerSpec:
    """The static structure of a run's learner, from its config and its env's shapes."""
    return LearnerSpec(
        obs_shape=tuple(obs_shape),
        n_actions=int(n_actions),
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


def make_steps(spec: LearnerSpec, batch_size: int, updates: int) -> Steps:
    """The per-run functions of a learner with `spec`, sampling `batch_size` windows per update and
    running `updates` updates per `learn` call (fused in one `lax.scan`)."""
    learner = make_learner(spec)

    def act(state, obs, key, epsilon, tau, mask):
        key, sub = jax.random.split(key)
        q = learner.q_act(state, obs)
        return select_action(sub, q, epsilon, tau, mask), q, key

    def store(ts: TrainState, chunk: replay.Transition) -> TrainState:
        return ts._replace(buffer=replay.add(ts.buffer, chunk))

    def update(ts: TrainState, hyper: Hyper):
        """`updates` learner updates on n-step windows sampled from the buffer; their mean metrics."""

        def one_update(state: LearnerState, key: jax.Array):
            window = replay.sample(ts.buffer, key, batch_size, spec.n_step)
            return learner.update(state, window, hyper)

        key, *keys = jax.random.split(ts.key, updates + 1)
        state, metrics = jax.lax.scan(one_update, ts.learner, jnp.stack(keys))
        return TrainState(state, ts.buffer, key), jax.tree.map(jnp.mean, metrics)

    def learn(ts: TrainState, chunk: replay.Transition, hyper: Hyper):
        return update(store(ts, chunk), hyper)

    return Steps(learner.init, act, learner.q_act, store, update, learn)


def keep_if(running: jax.Array, new: Any, old: Any) -> Any:
    """`new` where the run is still running, else `old` (a stopped run's state stays as it was)."""
    return jax.tree.map(lambda a, b: jnp.where(running, a, b), new, old)
