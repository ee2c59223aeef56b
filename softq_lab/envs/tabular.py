"""One generic pure-JAX env for every env with a tabular model (`env.unwrapped.P`).

gymnasium's toy-text model `P[s][a] = [(prob, next_state, reward, terminated), ...]` becomes padded
arrays over the K outcomes of each (s, a) — probabilities, next states, rewards, terminated flags
[S, A, K], K the most outcomes of any pair, padding at probability 0 — and a step draws one outcome
with `jax.random.categorical` over their log-probabilities. Observations are one-hot float32 vectors
of the state (length S), as `envs.make` gives the learner. FrozenLake, CliffWalking, Taxi, MaxBias and
a user's own toy-text env all run through this one table; `from_gym` builds it.

The state is a `TabularState`: the state index `s`, the step counter `t` and `visited` (bool [S], the
states this episode has been in, its reset state included).

What the table alone does not say is read from the unwrapped env when it has it:
- `initial_state_distrib` [S]: the reset distribution. Every toy-text env of gymnasium has one
  (FrozenLake: its S tile; CliffWalking: 36; Taxi: its spread of starts; MaxBias: A). An env without
  one starts every episode in state 0: there is nothing else to read, and 0 is where toy-text maps
  number their start when they have a single one.
- `action_mask(s)` (a method): the valid actions the env reports in `info["action_mask"]` (Taxi:
  moves that change the state; MaxBias: the actions valid in A or B), built once into a bool [S, A]
  table (`valid_actions`) that `action_mask(state)` indexes. All True for an env without the method.
  (Taxi's mask hides no-op moves, which its model allows: the driver on gymnasium masks them too,
  through `info`, and `diagnostics.exact.tabular_mdp` solves the MDP without them.)
- `reward_std` [S, A]: Gaussian reward noise, `reward_std[s, a] · N(0, 1)` added to the model's mean
  reward (MaxBias's rewards at B are N(mean, std²) and its model holds the mean).
- `episode_flags` {name: state}: per-episode metrics, each 1.0 when the episode visited that state
  and 0.0 otherwise, which `episode_metrics` reads from `visited` on the episode's last state
  (MaxBias's `{"maxbias/left": B}`: the episode went left from A exactly when it visited B).
- `max_episode_length`: for an env with no registered time limit whose episodes end by themselves
  within that many steps (MaxBias: 2). The env's limit is then one step more than that, so that no
  step ever reports `truncated` (a limit equal to it would flag every left episode of MaxBias as
  terminated *and* truncated on its last step).

Time limit: `truncated` is True on the step where the counter reaches `max_episode_steps`, as
gymnasium's `TimeLimit` does, whether or not that step also terminated.

Invalid actions: an action the model marks invalid (MaxBias: `(1.0, terminal, -inf, True)`) is
stepped as the model says: reward −inf (never NaN: the noise added is finite), terminated.
Drivers act with `action_mask` and never take one. An action outside [0, A) is clipped by JAX's
indexing and is the caller's error.

Only an env whose `step` follows its model can be driven by the table: `from_gym` refuses Taxi with
`fickle_passenger` (its step changes the destination outside P).
"""

from __future__ import annotations

from typing import NamedTuple

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from softq_lab.envs.functional import JaxEnv


class TabularState(NamedTuple):
    s: jax.Array  # int32: the current state's index
    t: jax.Array  # int32: steps taken in this episode
    visited: jax.Array  # bool [S]: the states this episode has been in


class Tables(NamedTuple):
    """The model as arrays: outcome k of (s, a) has probability prob[s, a, k] (0 for padding)."""

    prob: np.ndarray  # [S, A, K] float64
    next_state: np.ndarray  # [S, A, K] int32
    reward: np.ndarray  # [S, A, K] float32 (the mean reward when reward_std > 0)
    terminated: np.ndarray  # [S, A, K] bool
    initial: np.ndarray  # [S] float64: the reset distribution
    mask: np.ndarray  # [S, A] bool: the valid actions
    reward_std: np.ndarray  # [S, A] float32
    flags: dict[str, int]  # episode metric name -> the state whose visit sets it to 1.0


def valid_actions(env: gym.Env) -> np.ndarray:
    """bool [S, A]: the actions valid in each state, from the env's `action_mask(s)` (the mask it
    reports in `info["action_mask"]`, which the drivers act with and the learner bootstraps over);
    all True for an env without one. The exact solvers read the same, so that the truth they give is
    the fixed point of the MDP the learner actually sees. ValueError for a mask of the wrong shape."""
    base = env.unwrapped
    n_states, n_actions = int(base.observation_space.n), int(base.action_space.n)
    mask_of = getattr(base, "action_mask", None)
    if not callable(mask_of):
        return np.ones((n_states, n_actions), bool)
    mask = np.stack([np.asarray(mask_of(s), bool) for s in range(n_states)])
    if mask.shape != (n_states, n_actions):
        raise ValueError(f"its action_mask(s) has shape {mask.shape[1:]}, not ({n_actions},)")
    return mask


def tables(env: gym.Env) -> Tables:
    """The padded arrays of `env.unwrapped`'s model and the facts read beside it (module docstring);
    ValueError for a model that is not one (probabilities not summing to 1, states out of range)."""
    base = env.unwrapped
    if getattr(base, "fickle_passenger", False):
        raise ValueError("its step departs from its model P (Taxi's fickle_passenger)")
    n_states, n_actions = int(base.observation_space.n), int(base.action_space.n)
    k = max(len(base.P[s][a]) for s in range(n_states) for a in range(n_actions))
    prob = np.zeros((n_states, n_actions, k))
    next_state = np.zeros((n_states, n_actions, k), np.int32)
    reward = np.zeros((n_states, n_actions, k), np.float32)
    terminated = np.zeros((n_states, n_actions, k), bool)
    for s in range(n_states):
        for a in range(n_actions):
            for i, (p, s_next, r, done) in enumerate(base.P[s][a]):
                if not 0 <= s_next < n_states:
                    raise ValueError(
                        f"its model P[{s}][{a}] leads to state {s_next}, not in [0, {n_states})"
                    )
                prob[s, a, i], next_state[s, a, i] = p, s_next
                reward[s, a, i], terminated[s, a, i] = r, done
    bad = ~np.isclose(prob.sum(-1), 1.0, rtol=0.0, atol=1e-6) | (prob < 0).any(-1)
    if bad.any():
        s, a = np.argwhere(bad)[0]
        raise ValueError(
            f"its model P[{s}][{a}] has probabilities {prob[s, a].tolist()}, not a distribution"
        )

    initial = getattr(base, "initial_state_distrib", None)
    initial = np.eye(n_states)[0] if initial is None else np.asarray(initial, float)
    if initial.shape != (n_states,) or not np.isclose(initial.sum(), 1.0) or (initial < 0).any():
        raise ValueError(
            f"its initial_state_distrib (shape {initial.shape}, sum {initial.sum()}) is not a "
            f"distribution over its {n_states} states"
        )

    mask = valid_actions(env)

    reward_std = getattr(base, "reward_std", None)
    if reward_std is None:
        reward_std = np.zeros((n_states, n_actions))
    reward_std = np.asarray(reward_std, np.float32)
    if (
        reward_std.shape != (n_states, n_actions)
        or not (np.isfinite(reward_std) & (reward_std >= 0)).all()
    ):
        raise ValueError(
            f"its reward_std must be finite and >= 0 of shape ({n_states}, {n_actions})"
        )

    flags = {str(name): int(s) for name, s in dict(getattr(base, "episode_flags", {})).items()}
    if any(not 0 <= s < n_states for s in flags.values()):
        raise ValueError(f"its episode_flags {flags} name states outside [0, {n_states})")
    return Tables(prob, next_state, reward, terminated, initial, mask, reward_std, flags)


def time_limit(env: gym.Env, max_episode_steps: int | None) -> int:
    """The env's time limit: the given one, else the registered one (`env.spec`), else one step
    beyond the episodes' natural length (`max_episode_length`, module docstring); ValueError when
    there is none."""
    if max_episode_steps is None and env.spec is not None:
        max_episode_steps = env.spec.max_episode_steps
    if max_episode_steps is None:
        natural = getattr(env.unwrapped, "max_episode_length", None)
        if natural is None:
            raise ValueError("it has no time limit (set env.max_episode_steps)")
        max_episode_steps = int(natural) + 1
    if int(max_episode_steps) != max_episode_steps or max_episode_steps < 1:
        raise ValueError(f"max_episode_steps must be an integer >= 1, got {max_episode_steps}")
    return int(max_episode_steps)


def from_gym(env: gym.Env, env_id: str, max_episode_steps: int | None) -> JaxEnv:
    """The table-driven JAX env of a gymnasium env with a tabular model (module docstring).

    `max_episode_steps`: the time limit; None for the registered one or the env's natural bound.
    ValueError when there is no limit or the model is not one the table can drive."""
    model = tables(env)
    limit = time_limit(env, max_episode_steps)
    n_states, n_actions = model.mask.shape
    with np.errstate(divide="ignore"):
        log_prob = jnp.asarray(np.log(model.prob), jnp.float32)
        log_initial = jnp.asarray(np.log(model.initial), jnp.float32)
    next_state, reward = jnp.asarray(model.next_state), jnp.asarray(model.reward)
    terminated, mask = jnp.asarray(model.terminated), jnp.asarray(model.mask)
    reward_std = jnp.asarray(model.reward_std)
    flags = dict(model.flags)

    def observe(s: jax.Array) -> jax.Array:
        return jax.nn.one_hot(s, n_states, dtype=jnp.float32)

    def reset(key: jax.Array) -> tuple[TabularState, jax.Array]:
        s = jax.random.categorical(key, log_initial).astype(jnp.int32)
        visited = jnp.zeros((n_states,), bool).at[s].set(True)
        return TabularState(s, jnp.zeros((), jnp.int32), visited), observe(s)

    def step(state: TabularState, action: jax.Array, key: jax.Array):
        key_outcome, key_noise = jax.random.split(key)
        k = jax.random.categorical(key_outcome, log_prob[state.s, action])
        s_next = next_state[state.s, action, k]
        # finite noise, so an invalid action's −inf reward stays −inf (never NaN)
        noise = reward_std[state.s, action] * jax.random.normal(key_noise)
        r = reward[state.s, action, k] + noise
        t = state.t + 1
        new = TabularState(s_next, t, state.visited.at[s_next].set(True))
        return new, observe(s_next), r, terminated[state.s, action, k], t >= limit

    def episode_metrics(state: TabularState) -> dict[str, jax.Array]:
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
