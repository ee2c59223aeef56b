"""q-functions over discrete actions, as flax Linen modules (pure `apply`, no state on the hot path).

Both types present the learner with one all-actions view, `q(obs) -> [batch, n_actions]`:

- type 2, `q(s, ·)`: an MLP from the observation to one output per action;
- type 1, `q(s, a)`: an MLP from the observation concatenated with the action's one-hot to one scalar;
  the all-actions view evaluates it at every action (`all_actions`).

`hidden_sizes=()` with `use_bias=False` and zero init on a one-hot observation is a lookup table
(type 2): exact tabular Q-learning.

A user's own flax module takes the MLP's place when `NetworkSpec.target` names its factory
(`pkg.module:make_q`, called with `n_actions` if it takes it and `NetworkSpec.kwargs`): of type 2 it
is the network, `module(obs [B, d]) -> [B, n_actions]`; of type 1 it is `module(obs [N, d],
one-hot action [N, n_actions]) -> [N]` (or [N, 1]), seen through the same all-actions view (`QSA`).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

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
    target: str | None = None  # a user's factory, `pkg.module:make_q`; None: the MLP above
    kwargs: tuple[tuple[str, Any], ...] = ()  # the factory's other arguments (hashable values)


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


def all_actions(
    q_sa: Callable[[jax.Array, jax.Array], jax.Array], obs: jax.Array, n_actions: int
) -> jax.Array:
    """q(s, ·) [B, A] of a q(s, a): `q_sa(obs [B, A, d], actions [B, A]) -> [B, A]` evaluated at every
    action of every observation of `obs` [B, d]."""
    batch = obs.shape[0]
    actions = jnp.broadcast_to(jnp.arange(n_actions), (batch, n_actions))
    obs_per_action = jnp.broadcast_to(obs[:, None, :], (batch, n_actions, obs.shape[-1]))
    return q_sa(obs_per_action, actions)


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
        return all_actions(self.q_sa, obs, self.n_actions)


class QSA(nn.Module):
    """A user's type-1 module `q_sa(obs [N, d], one-hot action [N, A]) -> [N]` (or [N, 1]) with
    `__call__` the all-actions view [B, A]."""

    q_sa: nn.Module
    n_actions: int

    def q_sa_of(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        """q(s, a) for obs [..., d] and integer actions [...]: one call on the flattened pairs."""
        flat_obs = obs.reshape(-1, obs.shape[-1])
        one_hot = jax.nn.one_hot(action.reshape(-1), self.n_actions, dtype=obs.dtype)
        return self.q_sa(flat_obs, one_hot).reshape(action.shape)

    def __call__(self, obs: jax.Array) -> jax.Array:
        return all_actions(self.q_sa_of, obs, self.n_actions)


def split_target(target: str) -> tuple[str, str]:
    """(module, attribute) of `pkg.module:make_q` or, Hydra's `_target_` form, `pkg.module.make_q`."""
    module, _, name = target.rpartition(":" if ":" in target else ".")
    return module, name


def takes(factory: Callable[..., Any], name: str) -> bool:
    """Whether `factory` accepts a keyword argument `name` (by name, or through **kwargs)."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # no signature to read: offer it
        return True
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in params)


def custom_call(spec: NetworkSpec, n_actions: int) -> tuple[Callable[..., Any], dict[str, Any]]:
    """The user's factory `spec.target` and its arguments: `spec.kwargs`, and `n_actions` when the
    factory takes it."""
    module, name = split_target(spec.target or "")
    factory = getattr(importlib.import_module(module), name)
    kwargs = dict(spec.kwargs)
    if takes(factory, "n_actions"):
        kwargs["n_actions"] = n_actions
    return factory, kwargs


def make(spec: NetworkSpec, n_actions: int) -> nn.Module:
    """The q-network of `spec.type` (1 or 2) over `n_actions` actions: the MLP, or the user's module
    when `spec.target` names one."""
    if spec.type not in (1, 2):
        raise ValueError(f"network.type={spec.type!r}: must be 1 (q(s,a)) or 2 (q(s,·))")
    if spec.target is not None:
        factory, kwargs = custom_call(spec, n_actions)
        module = factory(**kwargs)
        return module if spec.type == 2 else QSA(module, n_actions)
    return QType1(n_actions, spec) if spec.type == 1 else QType2(n_actions, spec)
