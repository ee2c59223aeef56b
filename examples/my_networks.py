"""Your own q-network: a factory that returns a flax module, named as `module:factory`.

    PYTHONPATH=examples softq-train network=custom network.target=my_networks:make_q
    PYTHONPATH=examples softq-train network=custom network.target=my_networks:make_q_sa network.type=1

softq-lab calls the factory with `n_actions` (if it takes it) and `network.kwargs`, then trains the
module it returns: `network.type=2` (default) for q(s, ·), obs [B, d] -> [B, n_actions];
`network.type=1` for q(s, a), obs [N, d] and a one-hot action [N, n_actions] -> [N] (or [N, 1]).
The module must be pure (parameters only, no BatchNorm statistics): the drivers jit it and the
device driver vmaps it over the runs of a sweep.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class DuelingQ(nn.Module):
    """q(s, ·) = V(s) + A(s, ·) − mean A(s, ·) on a shared tanh torso (Wang et al. 2016)."""

    n_actions: int
    hidden_sizes: Sequence[int] = (64, 64)

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = obs
        for size in self.hidden_sizes:
            x = nn.tanh(nn.Dense(size)(x))
        value, advantage = nn.Dense(1)(x), nn.Dense(self.n_actions)(x)
        return value + advantage - advantage.mean(axis=-1, keepdims=True)


class BilinearQSA(nn.Module):
    """q(s, a) = φ(s)·W·a + b·a: features of the observation against the action's one-hot."""

    features: int = 32

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        phi = nn.relu(nn.Dense(self.features)(obs))
        return jnp.sum(nn.Dense(action.shape[-1])(phi) * action, axis=-1)


def make_q(n_actions: int, hidden_sizes: Sequence[int] = (64, 64)) -> nn.Module:
    """A type-2 network (the default `network.type=2`)."""
    return DuelingQ(n_actions, tuple(hidden_sizes))


def make_q_sa(features: int = 32) -> nn.Module:
    """A type-1 network (`network.type=1`); it needs no `n_actions`, so it is not given one."""
    return BilinearQSA(features)
