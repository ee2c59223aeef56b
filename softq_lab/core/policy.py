"""The behaviour policy: Boltzmann over q/τ_π (greedy at τ_π = 0) mixed with ε-greedy.

    π(a|s) = ε·U(a) + (1 − ε)·softmax(q(s,·)/τ_π)_a

where U is uniform over the valid actions; the greedy policy (τ_π = 0) breaks ties at random. An
optional action mask (1 = valid) restricts both parts, for envs whose states offer fewer actions than
the action space (gymnasium's `info["action_mask"]`).

One action costs two uniform draws: one decides exploring, the other picks the action from the
chosen distribution by its inverse CDF (the draws are independent, so either branch is exact). It is
on every env step of every run, so it avoids a categorical (Gumbel) draw per branch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from softq_lab.core import operators


def inverse_cdf(probs: jax.Array, u: jax.Array) -> jax.Array:
    """The index k with c_{k−1} ≤ u·c_A < c_k, c = cumsum(probs): a draw from `probs` [..., A]
    (unnormalised, ≥ 0) for u ~ U[0, 1) [...]; never an index of probability 0."""
    c = jnp.cumsum(probs, axis=-1)
    return jnp.sum(c <= u[..., None] * c[..., -1:], axis=-1)


def action_probs(
    q: jax.Array, tau: jax.Array, mask: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """(π_explore, π_exploit) [..., A], each normalised: uniform over the valid actions, and
    softmax(q/τ) over them (uniform over the maximisers at τ = 0: `operators.boltzmann_policy`,
    whose random tie-break the double target draws too)."""
    valid = operators.valid_actions(q, mask)
    uniform = valid / jnp.sum(valid, axis=-1, keepdims=True)
    return uniform, operators.boltzmann_policy(q, tau, mask)


def select_action(
    key: jax.Array,
    q: jax.Array,
    epsilon: jax.Array,
    tau: jax.Array,
    mask: jax.Array | None = None,
) -> jax.Array:
    """One action per row of q [E, A], drawn from the ε-mixed Boltzmann policy."""
    uniform, exploit = action_probs(q, tau, mask)
    u = jax.random.uniform(key, (*q.shape[:-1], 2))
    explore = u[..., 0] < epsilon
    probs = jnp.where(explore[..., None], uniform, exploit)
    return inverse_cdf(probs, u[..., 1]).astype(jnp.int32)
