"""Backup operators: the value V(s) = op_τ(q(s, ·)) that a target bootstraps from.

Each operator maps action values `q [..., A]`, a temperature `tau >= 0` (a traced scalar, so a sweep
or schedule over τ never recompiles) and an optional action mask `[..., A]` (True = valid) to state
values `[...]`, and each is *exactly* the hard max at τ = 0 (selected with `jnp.where`, not
approximated by a tiny τ). With 𝒜 the valid actions:

- hard:       max_{a∈𝒜} q_a
- soft:       τ·log Σ_{a∈𝒜} exp(q_a/τ)                    (log-sum-exp; soft Q-learning)
- mellowmax:  τ·log( (1/|𝒜|) Σ_{a∈𝒜} exp(q_a/τ) )         (Asadi & Littman 2017)
- boltzmann:  Σ_{a∈𝒜} softmax(q/τ)_a · q_a                 (Song, Parr & Carin 2019)

An invalid action is absent: its q (never trained, so arbitrary) takes no part in any of them. A row
with no valid action at all (a terminal state; its value is multiplied by I^(n) = 0) counts every
action valid, so the value stays finite and 0·V stays 0.

All are computed with the max shifted out, so they are finite for τ down to 1e-8 and |q| up to 1e6 in
float32. For τ > 0:  max ≤ soft ≤ max + τ·log|𝒜|,  max − τ·log|𝒜| ≤ mellowmax ≤ max,  boltzmann ≤ max.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.scipy.special import xlogy

Operator = Callable[..., jax.Array]  # (q [..., A], tau, mask [..., A] | None = None) -> [...]


def _safe_tau(tau: jax.Array | float) -> tuple[jax.Array, jax.Array]:
    """(τ > 0, τ with zeros replaced by 1): the τ = 0 branch is selected by `where`, and must not
    put a division by zero into the other branch (its NaNs would leak into gradients)."""
    tau = jnp.asarray(tau)
    positive = tau > 0
    return positive, jnp.where(positive, tau, 1.0)


def valid_actions(q: jax.Array, mask: jax.Array | None) -> jax.Array:
    """The mask as bool of q's shape (all True when None); a row with no valid action: all True."""
    if mask is None:
        return jnp.ones(q.shape, bool)
    valid = jnp.broadcast_to(jnp.asarray(mask).astype(bool), q.shape)
    return valid | ~jnp.any(valid, axis=-1, keepdims=True)


def _masked(q: jax.Array, mask: jax.Array | None) -> tuple[jax.Array, jax.Array]:
    """(valid, q with invalid actions at −inf): they then vanish from max, exp and softmax."""
    valid = valid_actions(q, mask)
    return valid, jnp.where(valid, q, -jnp.inf)


def hard(q: jax.Array, tau: jax.Array | float = 0.0, mask: jax.Array | None = None) -> jax.Array:
    """max_{a∈𝒜} q_a; τ is accepted for a uniform signature and ignored."""
    del tau
    return jnp.max(_masked(q, mask)[1], axis=-1)


def soft(q: jax.Array, tau: jax.Array | float, mask: jax.Array | None = None) -> jax.Array:
    """τ·log Σ_{a∈𝒜} exp(q_a/τ), max-shifted: m + τ·log Σ_a exp((q_a − m)/τ), m = max_{a∈𝒜} q_a."""
    positive, t = _safe_tau(tau)
    q = _masked(q, mask)[1]
    m = jnp.max(q, axis=-1)
    lse = m + t * jnp.log(jnp.sum(jnp.exp((q - m[..., None]) / t), axis=-1))
    return jnp.where(positive, lse, m)


def mellowmax(q: jax.Array, tau: jax.Array | float, mask: jax.Array | None = None) -> jax.Array:
    """τ·log( mean_{a∈𝒜} exp(q_a/τ) ) = soft(q, τ) − τ·log|𝒜|."""
    positive, t = _safe_tau(tau)
    n_valid = jnp.sum(valid_actions(q, mask), axis=-1)
    mm = soft(q, t, mask) - t * jnp.log(n_valid)
    return jnp.where(positive, mm, hard(q, 0.0, mask))


def boltzmann_policy(
    q: jax.Array,
    tau: jax.Array | float,
    mask: jax.Array | None = None,
    key: jax.Array | None = None,
) -> jax.Array:
    """π(a) = softmax(q/τ)_a over 𝒜; at τ = 0 the greedy policy, with ties broken at random.

    With `key`, the greedy policy is one-hot on a maximiser drawn uniformly (as the behaviour policy
    and Q-learning's argmax do: `policy.action_probs`); without, it is uniform over the maximisers,
    the expectation of that draw. Never toward the lowest index, which at MaxBias's all-zero start
    would always pick action 0."""
    positive, t = _safe_tau(tau)
    valid, q = _masked(q, mask)
    is_max = valid & (q == jnp.max(q, axis=-1, keepdims=True))
    if key is None:
        greedy = is_max / jnp.sum(is_max, axis=-1, keepdims=True)
    else:
        pick = jnp.argmax(is_max * jax.random.uniform(key, q.shape, minval=0.5, maxval=1.0), -1)
        greedy = jax.nn.one_hot(pick, q.shape[-1])
    return jnp.where(positive, jax.nn.softmax(q / t, axis=-1), greedy.astype(q.dtype))


def boltzmann(q: jax.Array, tau: jax.Array | float, mask: jax.Array | None = None) -> jax.Array:
    """Σ_{a∈𝒜} softmax(q/τ)_a · q_a: the expected q under the Boltzmann policy."""
    positive, _ = _safe_tau(tau)
    valid = valid_actions(q, mask)
    expectation = jnp.sum(boltzmann_policy(q, tau, mask) * jnp.where(valid, q, 0.0), axis=-1)
    return jnp.where(positive, expectation, hard(q, 0.0, mask))


def soft_entropy(
    q: jax.Array, tau: jax.Array | float, mask: jax.Array | None = None
) -> jax.Array:
    """H(softmax(q/τ)) over 𝒜 in nats; 0 at τ = 0. soft(q, τ) = E_π[q] + τ·H(π), π = softmax(q/τ)."""
    positive, _ = _safe_tau(tau)
    pi = boltzmann_policy(q, tau, mask)
    return jnp.where(positive, -jnp.sum(xlogy(pi, pi), axis=-1), 0.0)


def double_value(
    q_targ: jax.Array,
    q_select: jax.Array,
    tau: jax.Array,
    operator: str,
    mask: jax.Array | None = None,
    key: jax.Array | None = None,
) -> jax.Array:
    """Double-Q value: the target network's q evaluates the policy chosen by the online network.

    With π = boltzmann_policy(q_select, τ, mask, key), the value is E_π[q_targ] + τ·H(π) for `soft`
    and E_π[q_targ] for `boltzmann`; both equal the plain operator when q_select = q_targ, and both
    are q_targ[argmax q_select] (van Hasselt et al. 2016) at τ = 0, the argmax's ties broken at
    random with `key` (as van Hasselt 2010's Double Q-learning does), averaged over without.
    """
    valid = valid_actions(q_targ, mask)
    pi = boltzmann_policy(q_select, tau, mask, key)
    expected = jnp.sum(pi * jnp.where(valid, q_targ, 0.0), axis=-1)
    if operator == "soft":
        return expected + jnp.asarray(tau) * soft_entropy(q_select, tau, mask)
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
