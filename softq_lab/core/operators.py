"""Backup operators: the value V(s) = op_τ(q(s, ·)) that a target bootstraps from.

Each operator maps action values `q [..., A]` and a temperature `tau >= 0` (a traced scalar, so a sweep
or schedule over τ never recompiles) to state values `[...]`, and each is *exactly* the hard max at
τ = 0 (selected with `jnp.where`, not approximated by a tiny τ):

- hard:       max_a q_a
- soft:       τ·log Σ_a exp(q_a/τ)                       (log-sum-exp; soft Q-learning)
- mellowmax:  τ·log( (1/|A|) Σ_a exp(q_a/τ) )            (Asadi & Littman 2017)
- boltzmann:  Σ_a softmax(q/τ)_a · q_a                    (Song, Parr & Carin 2019)

All are computed with the max shifted out, so they are finite for τ down to 1e-8 and |q| up to 1e6 in
float32. For τ > 0:  max ≤ soft ≤ max + τ·log|A|,  max − τ·log|A| ≤ mellowmax ≤ max,  boltzmann ≤ max.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

Operator = Callable[[jax.Array, jax.Array], jax.Array]


def _safe_tau(tau: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(τ > 0, τ with zeros replaced by 1): the τ = 0 branch is selected by `where`, and must not
    put a division by zero into the other branch (its NaNs would leak into gradients)."""
    tau = jnp.asarray(tau)
    positive = tau > 0
    return positive, jnp.where(positive, tau, 1.0)


def hard(q: jax.Array, tau: jax.Array | float = 0.0) -> jax.Array:
    """max_a q_a; τ is accepted for a uniform signature and ignored."""
    del tau
    return jnp.max(q, axis=-1)


def soft(q: jax.Array, tau: jax.Array | float) -> jax.Array:
    """τ·log Σ_a exp(q_a/τ), max-shifted: m + τ·log Σ_a exp((q_a − m)/τ) with m = max_a q_a."""
    positive, t = _safe_tau(tau)
    m = jnp.max(q, axis=-1)
    lse = m + t * jnp.log(jnp.sum(jnp.exp((q - m[..., None]) / t), axis=-1))
    return jnp.where(positive, lse, m)


def mellowmax(q: jax.Array, tau: jax.Array | float) -> jax.Array:
    """τ·log( mean_a exp(q_a/τ) ) = soft(q, τ) − τ·log|A|."""
    positive, t = _safe_tau(tau)
    m = jnp.max(q, axis=-1)
    mm = soft(q, t) - t * jnp.log(q.shape[-1])
    return jnp.where(positive, mm, m)


def boltzmann_policy(q: jax.Array, tau: jax.Array | float) -> jax.Array:
    """π(a) = softmax(q/τ)_a; at τ = 0 the one-hot greedy policy (ties to the lowest index)."""
    positive, t = _safe_tau(tau)
    greedy = jax.nn.one_hot(jnp.argmax(q, axis=-1), q.shape[-1], dtype=q.dtype)
    return jnp.where(positive, jax.nn.softmax(q / t, axis=-1), greedy)


def boltzmann(q: jax.Array, tau: jax.Array | float) -> jax.Array:
    """Σ_a softmax(q/τ)_a · q_a: the expected q under the Boltzmann policy."""
    positive, _ = _safe_tau(tau)
    expectation = jnp.sum(boltzmann_policy(q, tau) * q, axis=-1)
    return jnp.where(positive, expectation, jnp.max(q, axis=-1))


def soft_entropy(q: jax.Array, tau: jax.Array | float) -> jax.Array:
    """H(softmax(q/τ)) in nats; 0 at τ = 0. soft(q, τ) = E_π[q] + τ·H(π) for π = softmax(q/τ)."""
    positive, t = _safe_tau(tau)
    logp = jax.nn.log_softmax(q / t, axis=-1)
    h = -jnp.sum(jnp.exp(logp) * logp, axis=-1)
    return jnp.where(positive, h, 0.0)


def double_value(
    q_targ: jax.Array, q_select: jax.Array, tau: jax.Array, operator: str
) -> jax.Array:
    """Double-Q value: the target network's q evaluates the policy chosen by the online network.

    With π = boltzmann_policy(q_select, τ) (greedy at τ = 0), the value is E_π[q_targ] + τ·H(π) for
    `soft` and E_π[q_targ] for `boltzmann`; both equal the plain operator when q_select = q_targ, and
    both are q_targ[argmax q_select] (van Hasselt et al. 2016) at τ = 0.
    """
    pi = boltzmann_policy(q_select, tau)
    expected = jnp.sum(pi * q_targ, axis=-1)
    if operator == "soft":
        return expected + jnp.asarray(tau) * soft_entropy(q_select, tau)
    if operator == "boltzmann":
        return expected
    raise ValueError(f"operator={operator!r}: double Q-learning supports 'soft' and 'boltzmann'")


OPERATORS: dict[str, Operator] = {
    "soft": soft,
    "mellowmax": mellowmax,
    "boltzmann": boltzmann,
    "hard": hard,
}


def get(name: str) -> Operator:
    """The operator called `name` (one of OPERATORS)."""
    if name not in OPERATORS:
        raise ValueError(f"operator={name!r}: must be one of {sorted(OPERATORS)}")
    return OPERATORS[name]
