"""Schedules of a run's step, as traced functions (a sweep over their parameters never recompiles).

    ε(t)  = ε_0 + min(t / T_ε, 1)·(ε_end − ε_0)          (T_ε ≤ 0: ε_end from the start)
    lr(t) = lr_0·max(0, 1 − t / T)   (linear)   or   lr_0   (constant)

with t the number of env steps done and T the run's total steps.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Scalar = jax.Array | float | int


def linear_epsilon(step: Scalar, start: Scalar, end: Scalar, decay_steps: Scalar) -> jax.Array:
    """ε falls linearly from `start` at step 0 to `end` at `decay_steps`, then stays at `end`."""
    frac = jnp.minimum(jnp.asarray(step, jnp.float32) / jnp.maximum(decay_steps, 1), 1.0)
    frac = jnp.where(jnp.asarray(decay_steps) > 0, frac, 1.0)
    return jnp.asarray(start, jnp.float32) + frac * (jnp.asarray(end, jnp.float32) - start)


def learning_rate(step: Scalar, lr: Scalar, linear: Scalar, total_steps: Scalar) -> jax.Array:
    """lr_0, or lr_0 decayed linearly to 0 at `total_steps` when `linear` is true."""
    decay = jnp.maximum(0.0, 1.0 - jnp.asarray(step, jnp.float32) / total_steps)
    return jnp.asarray(lr, jnp.float32) * jnp.where(jnp.asarray(linear), decay, 1.0)
