"""The n-step target of one transition, in the style of rlax: one transition in, vmap outside.

    G = R^(n) + B^(n) + I^(n) · V(S_{t+m})

with the window's m ≤ n steps (a prefix of the n, cut at the episode's end or at the newest stored
step), R^(n) = Σ_{k<m} γ^k R_{t+k} (R_{t+k}: the reward of the step taken at t+k), I^(n) = 0 if the
window's last step terminated the episode and γ^m otherwise (truncation bootstraps),
V = op_τ(q_targ(S_{t+m}, ·)), and an optional entropy bonus
B^(n) = Σ_{1≤k<m} γ^k · (−τ·log π(A_{t+k}|S_{t+k})) for the Boltzmann policy π = softmax(q/τ).

Without B (the default) the n > 1 target sums only rewards over the window: its fixed point is not
the soft Q*_τ. With B it is (on-policy, for the Boltzmann policy); at τ = 0 and n = 1 the two agree.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


def n_step_return(reward: jax.Array, mask: jax.Array, gamma: jax.Array) -> jax.Array:
    """R^(n) = Σ_k γ^k · mask_k · r_k for one window (reward, mask: [n])."""
    chex.assert_rank([reward, mask], 1)
    return jnp.sum(gamma ** jnp.arange(reward.shape[0]) * mask * reward)


def bootstrap_discount(mask: jax.Array, terminal: jax.Array, gamma: jax.Array) -> jax.Array:
    """I^(n) = 0 if the window's last step terminated the episode, else γ^m with m = Σ mask."""
    chex.assert_rank([mask, terminal], [1, 0])
    return jnp.where(terminal, 0.0, gamma ** jnp.sum(mask))


def entropy_bonus(
    logp_taken: jax.Array, mask: jax.Array, tau: jax.Array, gamma: jax.Array
) -> jax.Array:
    """B^(n) = Σ_{1≤k<n} γ^k·mask_k·(−τ·log π(A_{t+k}|S_{t+k})); logp_taken[k] = log π(A_{t+k}|S_{t+k})."""
    chex.assert_rank([logp_taken, mask], 1)
    k = jnp.arange(mask.shape[0])
    return jnp.sum(jnp.where(k >= 1, gamma**k * mask * (-tau * logp_taken), 0.0))


def n_step_target(
    reward: jax.Array,
    mask: jax.Array,
    terminal: jax.Array,
    v_next: jax.Array,
    gamma: jax.Array,
    bonus: jax.Array | float = 0.0,
) -> jax.Array:
    """G = R^(n) + B^(n) + I^(n)·V(S_{t+m}) for one window; the caller stops its gradient."""
    chex.assert_rank(v_next, 0)
    return (
        n_step_return(reward, mask, gamma)
        + bonus
        + bootstrap_discount(mask, terminal, gamma) * v_next
    )
