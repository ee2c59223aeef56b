"""Pure JAX environments: `reset` and `step` are functions of arrays, so whole runs fit in `lax.scan`
and batches of runs in `jax.vmap`.

    reset(key)                -> (state, obs)
    step(state, action, key)  -> (state, obs, reward, terminated, truncated)
    action_mask(state)        -> bool [n_actions]  (all True for envs without masks)
    episode_metrics(state)    -> {name: scalar}, read on the last state of an episode
                                 (e.g. MaxBias's `maxbias/left`); {} for most envs

`state` is any pytree and carries the step counter for the time limit: `truncated` is True on the
step that reaches `max_episode_steps`, exactly as gymnasium's `TimeLimit` (a step may be both
terminated and truncated). Observations are flat float32 vectors, as `envs.make` gives the learner
(one-hot for discrete observation spaces).

`auto_reset_step` is what a driver calls inside its scan: it steps, and where the episode ended it
resets, returning the reset observation to act on next and the true final observation for the
bootstrap. Terminated and truncated stay apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

EnvState = Any


class JaxEnv(NamedTuple):
    """A pure env: its functions and the static facts a driver needs (hashable ids only)."""

    id: str
    obs_shape: tuple[int, ...]
    n_actions: int
    max_episode_steps: int
    reset: Callable[[jax.Array], tuple[EnvState, jax.Array]]
    step: Callable[
        [EnvState, jax.Array, jax.Array],
        tuple[EnvState, jax.Array, jax.Array, jax.Array, jax.Array],
    ]
    action_mask: Callable[[EnvState], jax.Array]
    episode_metrics: Callable[[EnvState], dict[str, jax.Array]]


def no_mask(n_actions: int) -> Callable[[EnvState], jax.Array]:
    """`action_mask` for an env whose every action is always valid."""
    return lambda state: jnp.ones((n_actions,), bool)


def no_metrics(state: EnvState) -> dict[str, jax.Array]:
    """`episode_metrics` for an env with nothing to report per episode."""
    del state
    return {}


class AutoResetStep(NamedTuple):
    """One step with auto-reset. `obs` is what to act on next (the reset observation after an
    episode ended); `final_obs` is the observation the step reached (the bootstrap's S_{t+1});
    `next_mask` its valid actions; `metrics` the ended episode's `episode_metrics`."""

    state: EnvState
    obs: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array
    next_mask: jax.Array
    metrics: dict[str, jax.Array]


def auto_reset_step(
    env: JaxEnv, state: EnvState, action: jax.Array, key: jax.Array
) -> AutoResetStep:
    """`env.step`, then `env.reset` where the episode ended (for one env; vmap for many)."""
    key_step, key_reset = jax.random.split(key)
    state, obs, reward, terminated, truncated = env.step(state, action, key_step)
    next_mask = env.action_mask(state)
    metrics = env.episode_metrics(state)
    done = terminated | truncated
    reset_state, reset_obs = env.reset(key_reset)
    state = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state, state)
    return AutoResetStep(
        state=state,
        obs=jnp.where(done, reset_obs, obs),
        reward=reward,
        terminated=terminated,
        truncated=truncated,
        final_obs=obs,
        next_mask=next_mask,
        metrics=metrics,
    )
