"""One generic pure-JAX env for every env with a tabular model (`env.unwrapped.P`).

gymnasium's toy-text model `P[s][a] = [(prob, next_state, reward, terminated), ...]` becomes padded
arrays over the K outcomes of each (s, a) — probabilities, next states, rewards, terminated flags
[S, A, K] — and a step draws one outcome by its probability. Observations are one-hot float32 vectors
of the state, as `envs.make` gives the learner. FrozenLake, CliffWalking, Taxi, MaxBias and a user's
own toy-text env all run through this one table.

What the table alone does not say is read from the unwrapped env when it has it:
- `initial_state_distrib` [S]: the reset distribution (else state 0);
- `action_mask(s)`: the valid actions the env reports in `info["action_mask"]` (Taxi, MaxBias);
  `action_mask(state)` returns the same (all True for an env without masks);
- `reward_std` [S, A]: Gaussian reward noise around the model's mean reward (MaxBias's rewards at B
  are N(mean, std²); its model holds the mean);
- `episode_flags` {name: state}: an episode metric that is 1.0 when the episode visited that state
  (MaxBias's `maxbias/left`: it visited B), read by `episode_metrics` on the episode's last state;
- `max_episode_length`: for an env without a time limit whose episodes end by themselves within that
  many steps (MaxBias: 2); the env gets a limit one step longer, which no episode reaches.

An action the model marks invalid (MaxBias: reward −inf) returns that reward as it is; drivers act
with the action masks and never take one.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from softq_lab.envs.functional import JaxEnv


class TabularState(NamedTuple):
    s: jax.Array  # the current state's index
    t: jax.Array  # steps taken in this episode
    visited: jax.Array  # bool [S]: the states this episode has been in


class Tables(NamedTuple):
    """The model as arrays: outcome k of (s, a) has probability prob[s, a, k] (0 for padding)."""

    prob: np.ndarray  # [S, A, K]
    next_state: np.ndarray  # [S, A, K] int
    reward: np.ndarray  # [S, A, K]
    terminated: np.ndarray  # [S, A, K] bool
    initial: np.ndarray  # [S]
    mask: np.ndarray  # [S, A] bool
    reward_std: np.ndarray  # [S, A]


def tables(env: gym.Env) -> Tables:
    """The padded arrays of `env.unwrapped`'s model and the facts read beside it."""
    base = env.unwrapped
    n_states, n_actions = int(base.observation_space.n), int(base.action_space.n)
    k = max(len(base.P[s][a]) for s in range(n_states) for a in range(n_actions))
    prob = np.zeros((n_states, n_actions, k))
    next_state = np.zeros((n_states, n_actions, k), np.int32)
    reward = np.zeros((n_states, n_actions, k), np.float32)
    terminated = np.zeros((n_states, n_actions, k), bool)
    for s in range(n_states):
        for a in range(n_actions):
            for i, (p, s_next, r, done) in enumerate(base.P[s][a]):
                prob[s, a, i], next_state[s, a, i] = p, s_next
                reward[s, a, i], terminated[s, a, i] = r, done
    initial = getattr(base, "initial_state_distrib", None)
    if initial is None:
        initial = np.eye(n_states)[0]
    if hasattr(base, "action_mask"):
        mask = np.stack([np.asarray(base.action_mask(s), bool) for s in range(n_states)])
    else:
        mask = np.ones((n_states, n_actions), bool)
    reward_std = np.asarray(getattr(base, "reward_std", np.zeros((n_states, n_actions))))
    return Tables(
        prob, next_state, reward, terminated, np.asarray(initial, float), mask, reward_std
    )


def time_limit(env: gym.Env, max_episode_steps: int | None) -> int:
    """The env's time limit: the config's, else the registered one, else one step beyond the
    episodes' natural length (`max_episode_length`); ValueError when there is none."""
    if max_episode_steps is not None:
        return max_episode_steps
    if env.spec is not None and env.spec.max_episode_steps is not None:
        return int(env.spec.max_episode_steps)
    natural = getattr(env.unwrapped, "max_episode_length", None)
    if natural is not None:
        return int(natural) + 1
    raise ValueError("it has no time limit (set env.max_episode_steps)")


def from_gym(env: gym.Env, env_id: str, max_episode_steps: int | None) -> JaxEnv:
    """The table-driven JAX env of a gymnasium env with a tabular model."""
    model = tables(env)
    limit = time_limit(env, max_episode_steps)
    n_states, n_actions = model.mask.shape
    with np.errstate(divide="ignore"):
        log_prob = jnp.asarray(np.log(model.prob), jnp.float32)
        log_initial = jnp.asarray(np.log(model.initial), jnp.float32)
    next_state, reward = jnp.asarray(model.next_state), jnp.asarray(model.reward)
    terminated, mask = jnp.asarray(model.terminated), jnp.asarray(model.mask)
    reward_std = jnp.asarray(model.reward_std, jnp.float32)
    flags: dict[str, int] = dict(getattr(env.unwrapped, "episode_flags", {}))

    def observe(s: jax.Array) -> jax.Array:
        return jax.nn.one_hot(s, n_states, dtype=jnp.float32)

    def reset(key: jax.Array) -> tuple[TabularState, jax.Array]:
        s = jax.random.categorical(key, log_initial)
        visited = jnp.zeros((n_states,), bool).at[s].set(True)
        return TabularState(s, jnp.zeros((), jnp.int32), visited), observe(s)

    def step(state: TabularState, action: jax.Array, key: jax.Array):
        key_outcome, key_noise = jax.random.split(key)
        k = jax.random.categorical(key_outcome, log_prob[state.s, action])
        s_next = next_state[state.s, action, k]
        noise = reward_std[state.s, action] * jax.random.normal(key_noise)
        r = reward[state.s, action, k] + noise
        t = state.t + 1
        new = TabularState(s_next, t, state.visited.at[s_next].set(True))
        return new, observe(s_next), r, terminated[state.s, action, k], t >= limit

    def episode_metrics(state: TabularState) -> dict[str, Any]:
        return {name: state.visited[s].astype(jnp.float32) for name, s in flags.items()}

    return JaxEnv(
        id=env_id,
        obs_shape=(n_states,),
        n_actions=n_actions,
        max_episode_steps=limit,
        reset=reset,
        step=step,
        action_mask=lambda state: mask[state.s],
        episode_metrics=episode_metrics,
    )
