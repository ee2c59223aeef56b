"""q-functions over discrete actions, as flax Linen modules (pure `apply`, no state on the hot path).

Both types present the learner with one all-actions view, `q(obs) -> [batch, n_actions]`:

- type 2, `q(s, ·)`: an MLP from the observation to one output per action;
- type 1, `q(s, a)`: an MLP from the observation concatenated with the action's one-hot to one scalar;
  the all-actions view evaluates it at every action.

`hidden_sizes=()` with `use_bias=False` and zero init on a one-hot observation is a lookup table
(type 2): exact tabular Q-learning.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "tanh": nn.tanh,
    "elu": nn.elu,
    "gelu": nn.gelu,
    "silu": nn.silu,
}
INITS = ("default", "zeros")


@dataclass(frozen=True)
class NetworkSpec:
    """Everything that fixes a network's shapes (hashable: it keys the compiled-function cache)."""

    type: int = 2
    hidden_sizes: tuple[int, ...] = (128, 128)
    activation: str = "relu"
    use_bias: bool = True
    init: str = "default"


class MLP(nn.Module):
    hidden_sizes: Sequence[int]
    out_size: int
    activation: str = "relu"
    use_bias: bool = True
    init: str = "default"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        for size in self.hidden_sizes:
            x = act(nn.Dense(size, use_bias=self.use_bias)(x))
        kernel_init = (
            nn.initializers.zeros if self.init == "zeros" else nn.linear.default_kernel_init
        )
        return nn.Dense(self.out_size, use_bias=self.use_bias, kernel_init=kernel_init)(x)


class QType2(nn.Module):
    """q(s, ·): observation [B, d] -> action values [B, A]."""

    n_actions: int
    spec: NetworkSpec

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        s = self.spec
        return MLP(s.hidden_sizes, self.n_actions, s.activation, s.use_bias, s.init)(obs)


class QType1(nn.Module):
    """q(s, a): [B, d] and actions [B] -> [B]; `__call__` gives the all-actions view [B, A]."""

    n_actions: int
    spec: NetworkSpec

    def setup(self) -> None:
        s = self.spec
        self.mlp = MLP(s.hidden_sizes, 1, s.activation, s.use_bias, s.init)

    def q_sa(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        a = jax.nn.one_hot(action, self.n_actions, dtype=obs.dtype)
        return self.mlp(jnp.concatenate([obs, a], axis=-1))[..., 0]

    def __call__(self, obs: jax.Array) -> jax.Array:
        batch = obs.shape[0]
        actions = jnp.broadcast_to(jnp.arange(self.n_actions), (batch, self.n_actions))
        obs_per_action = jnp.broadcast_to(obs[:, None, :], (batch, self.n_actions, obs.shape[-1]))
        return self.q_sa(obs_per_action, actions)


def make(spec: NetworkSpec, n_actions: int) -> nn.Module:
    """The q-network of `spec.type` (1 or 2) over `n_actions` actions."""
    if spec.type == 1:
        return QType1(n_actions, spec)
    if spec.type == 2:
        return QType2(n_actions, spec)
    raise ValueError(f"network.type={spec.type!r}: must be 1 (q(s,a)) or 2 (q(s,·))")
