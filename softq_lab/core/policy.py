"""The behaviour policy: Boltzmann over q/τ_π (greedy at τ_π = 0) mixed with ε-greedy.

    π(a|s) = ε·U(a) + (1 − ε)·softmax(q(s,·)/τ_π)_a

where U is uniform over the valid actions; the greedy policy (τ_π = 0) breaks ties at random. An
optional action mask (1 = valid) restricts both parts, for envs whose states offer fewer actions than
the action space (gymnasium's `info["action_mask"]`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def select_action(
    key: jax.Array,
    q: jax.Array,
    epsilon: jax.Array,
    tau: jax.Array,
    mask: jax.Array | None = None,
) -> jax.Array:
    """One action per row of q [E, A], drawn from the ε-mixed Boltzmann policy."""
    if mask is None:
        mask = jnp.ones(q.shape, bool)
    mask = mask.astype(bool)
    key_explore, key_uniform, key_boltzmann, key_tie = jax.random.split(key, 4)
    q = jnp.where(mask, q, -jnp.inf)
    # Ties are broken at random: a lowest-index rule would bias a zero-initialised table.
    is_max = q == jnp.max(q, axis=-1, keepdims=True)
    greedy = jax.random.categorical(key_tie, jnp.where(is_max, 0.0, -jnp.inf), axis=-1)
    safe_tau = jnp.where(tau > 0, tau, 1.0)
    boltzmann = jax.random.categorical(key_boltzmann, q / safe_tau, axis=-1)
    exploit = jnp.where(tau > 0, boltzmann, greedy)
    uniform = jax.random.categorical(key_uniform, jnp.where(mask, 0.0, -jnp.inf), axis=-1)
    explore = jax.random.uniform(key_explore, greedy.shape) < epsilon
    return jnp.where(explore, uniform, exploit).astype(jnp.int32)


def linear_epsilon(step: int, start: float, end: float, decay_steps: int) -> float:
    """ε falls linearly from `start` at step 0 to `end` at `decay_steps`, then stays at `end`."""
    if decay_steps <= 0:
        return end
    frac = min(step / decay_steps, 1.0)
    return start + frac * (end - start)
