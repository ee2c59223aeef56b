"""A uniform replay buffer of 1-step transitions, with n-step windows cut at sample time.

The buffer is a pytree of fixed-size arrays laid out time-major, `[capacity, n_envs, ...]`, so that one
stream per env keeps its transitions in order (the host driver has `n_envs = 1`; a vectorised driver
writes all its envs at once). `add` and `sample` are pure functions, jittable and vmappable.

`sample` draws a start (t, e) uniformly among the stored transitions and returns the window
t, t+1, ..., t+n−1 of stream e, cut short

- after the first step that ended the episode (terminated or truncated): no window ever runs into the
  next episode's first state, and
- at the newest transition of the stream (the future beyond it is not stored yet; this also keeps a
  window from wrapping onto the oldest, overwritten data).

The bootstrap observation is the `next_obs` stored with the window's last transition: the true final
observation for a truncated episode, not the reset observation that follows it.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp


class Transition(NamedTuple):
    """One env step per stream, `[n_envs, ...]` (or `[T, n_envs, ...]` for a chunk of T steps)."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    next_obs: jax.Array
    next_mask: jax.Array  # bool [..., A]: the actions valid at next_obs (all True without masks)


class BufferState(NamedTuple):
    data: Transition  # every leaf [capacity, n_envs, ...]
    pos: jax.Array  # next row to write
    size: jax.Array  # rows filled so far, ≤ capacity


class Window(NamedTuple):
    """An n-step window per sampled start, batch-major.

    obs [B, n, ...] and action [B, n]: S_{t+k}, A_{t+k}; reward [B, n]: R_{t+k}, the reward of step t+k;
    mask [B, n]: 1 for the steps inside the window (a prefix);
    terminal [B]: the window's last step terminated the episode; next_obs [B, ...]: S_{t+m}, the
    observation after the window's last step (m = mask.sum(-1)); next_mask [B, A]: the actions valid
    at S_{t+m}, which the bootstrap's operator ranges over; action_mask [B, n, A]: the actions valid
    at S_{t+k} for k ≥ 1 inside the window (the stored next_mask of step t+k−1; row 0, not stored, is
    all True), which the entropy bonus's policy ranges over.
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    mask: jax.Array
    terminal: jax.Array
    next_obs: jax.Array
    next_mask: jax.Array
    action_mask: jax.Array


def init(capacity: int, n_envs: int, obs_shape: tuple[int, ...], n_actions: int) -> BufferState:
    """An empty buffer of `capacity` rows of `n_envs` float32 observations of `obs_shape`."""
    if capacity < 1 or n_envs < 1:
        raise ValueError(f"capacity={capacity}, n_envs={n_envs}: both must be >= 1")

    def zeros(shape: tuple[int, ...], dtype: jnp.dtype) -> jax.Array:
        return jnp.zeros((capacity, n_envs, *shape), dtype)

    data = Transition(
        obs=zeros(obs_shape, jnp.float32),
        action=zeros((), jnp.int32),
        reward=zeros((), jnp.float32),
        terminated=zeros((), jnp.bool_),
        truncated=zeros((), jnp.bool_),
        next_obs=zeros(obs_shape, jnp.float32),
        next_mask=zeros((n_actions,), jnp.bool_),
    )
    return BufferState(data=data, pos=jnp.zeros((), jnp.int32), size=jnp.zeros((), jnp.int32))


def add(state: BufferState, chunk: Transition) -> BufferState:
    """Write a chunk of T consecutive steps (leaves `[T, n_envs, ...]`), wrapping around."""
    capacity = state.data.reward.shape[0]
    steps = chunk.reward.shape[0]
    chex.assert_tree_shape_prefix(chunk, (steps, state.data.reward.shape[1]))
    if steps == 1:  # a dynamic-update-slice, done in place inside a scan (a scatter may copy)
        data = jax.tree.map(
            lambda buf, x: jax.lax.dynamic_update_index_in_dim(
                buf, x[0].astype(buf.dtype), state.pos, 0
            ),
            state.data,
            chunk,
        )
    else:
        rows = (state.pos + jnp.arange(steps)) % capacity
        data = jax.tree.map(lambda buf, x: buf.at[rows].set(x.astype(buf.dtype)), state.data, chunk)
    return BufferState(
        data=data,
        pos=(state.pos + steps) % capacity,
        size=jnp.minimum(state.size + steps, capacity),
    )


def sample(state: BufferState, key: jax.Array, batch_size: int, n_step: int) -> Window:
    """`batch_size` n-step windows with uniformly drawn starts (the buffer must not be empty)."""
    n_envs = state.data.reward.shape[1]
    key_t, key_e = jax.random.split(key)
    age = jax.random.randint(key_t, (batch_size,), 0, state.size)
    env = jax.random.randint(key_e, (batch_size,), 0, n_envs)
    return windows(state, age, env, n_step)


def windows(state: BufferState, age: jax.Array, env: jax.Array, n_step: int) -> Window:
    """The n-step windows starting at the transitions `age` (0 = oldest stored) of streams `env`."""
    capacity = state.data.reward.shape[0]
    batch_size = age.shape[0]
    oldest = jnp.where(state.size < capacity, 0, state.pos)
    t = (oldest + age) % capacity

    ks = jnp.arange(n_step)
    rows = (t[:, None] + ks[None, :]) % capacity  # [B, n]
    cols = jnp.broadcast_to(env[:, None], rows.shape)
    win = jax.tree.map(lambda x: x[rows, cols], state.data)  # leaves [B, n, ...]

    stored = ks[None, :] <= (state.size - 1 - age)[:, None]  # step t+k is already written
    done = win.terminated | win.truncated
    ended_before = (jnp.cumsum(done, axis=1) - done) > 0  # an earlier step ended the episode
    mask = stored & ~ended_before
    last = jnp.sum(mask, axis=1) - 1  # index of the window's last step, >= 0
    batch = jnp.arange(batch_size)
    return Window(
        obs=win.obs,
        action=win.action,
        reward=jnp.where(mask, win.reward, 0.0),
        mask=mask.astype(jnp.float32),
        terminal=win.terminated[batch, last],
        next_obs=win.next_obs[batch, last],
        next_mask=win.next_mask[batch, last],
        action_mask=jnp.concatenate(
            [jnp.ones_like(win.next_mask[:, :1]), win.next_mask[:, :-1]], axis=1
        ),
    )
