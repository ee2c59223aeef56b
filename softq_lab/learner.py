"""The soft-Q learner: `init(key) -> LearnerState` and `update(state, window, hyper) -> (state, metrics)`.

Pure functions of arrays, optax style. What fixes shapes or code paths is static (`LearnerSpec`,
hashable); what a sweep or a schedule varies is traced (`Hyper`: τ, γ, learning rate, target update),
so one compiled update serves every run of a sweep and a batch of runs can be `jax.vmap`ped.

One update, for a batch of n-step windows (see `replay.Window`):

    q_sa     = q_θ(S_t, A_t)
    V        = op_τ(q_θ⁻(S_{t+m}, ·))                  (double: q_θ⁻ evaluates π_τ(q_θ(S_{t+m}, ·)))
    q_targ   = stop_gradient(R^(n) + B^(n) + I^(n)·V)  (targets.n_step_target)
    td_error = q_targ − q_sa
    loss     = mean(huber(td_error))  or  mean(td_error² / 2)
    θ        ← θ − lr·optimizer(∇θ loss)               (optional global-norm clipping first)
    θ⁻       ← θ⁻ + c·(θ − θ⁻),  c = polyak, or 1 every `target_period` updates and 0 otherwise
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from softq_lab import networks, operators, targets
from softq_lab.replay import Window

Params = Any


class Hyper(NamedTuple):
    """Traced hyperparameters (scalars; a leading axis when vmapped over runs)."""

    tau: jax.Array
    gamma: jax.Array
    lr: jax.Array
    polyak: jax.Array  # target update coefficient when target_period == 0
    target_period: jax.Array  # hard copy every this many updates; 0 = Polyak averaging

    @classmethod
    def make(
        cls, tau: float, gamma: float, lr: float, polyak: float = 0.005, target_period: int = 0
    ) -> Hyper:
        f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
        return cls(
            f32(tau), f32(gamma), f32(lr), f32(polyak), jnp.asarray(target_period, jnp.int32)
        )


class LearnerState(NamedTuple):
    params: Params
    target_params: Params
    opt_state: optax.OptState
    updates: jax.Array  # number of updates done


@dataclass(frozen=True)
class LearnerSpec:
    """Static structure of a learner: shapes, operator, loss and optimizer."""

    obs_shape: tuple[int, ...]
    n_actions: int
    network: networks.NetworkSpec = field(default_factory=networks.NetworkSpec)
    n_step: int = 1
    operator: str = "soft"
    double: bool = False
    entropy_bonus: bool = False
    loss: str = "huber"
    optimizer: str = "adam"
    optimizer_kwargs: tuple[tuple[str, Any], ...] = ()
    max_grad_norm: float | None = 10.0


def make_optimizer(spec: LearnerSpec) -> optax.GradientTransformation:
    """optax.<name>(learning_rate=1, **kwargs), after optional clipping.

    The learning rate is applied outside, as a traced factor: every optax alias ends in
    `scale_by_learning_rate`, a linear scaling, so lr·optimizer(lr=1) is the same update.
    """
    make = getattr(optax, spec.optimizer)
    tx = make(learning_rate=1.0, **dict(spec.optimizer_kwargs))
    if spec.max_grad_norm is not None:
        tx = optax.chain(optax.clip_by_global_norm(spec.max_grad_norm), tx)
    return tx


class Learner(NamedTuple):
    init: Any  # (key) -> LearnerState
    update: Any  # (LearnerState, Window, Hyper) -> (LearnerState, metrics)
    q_values: Any  # (params, obs [B, ...]) -> [B, A]
    targets: Any  # (params, target_params, Window, Hyper) -> (q_targ at τ, q_targ at τ = 0)


def bootstrap_value(
    spec: LearnerSpec, q_targ: jax.Array, q_online: jax.Array, tau: jax.Array
) -> jax.Array:
    """V(S_{t+m}) under the spec's operator (double: the online net chooses, the target evaluates)."""
    if spec.double:
        return operators.double_value(q_targ, q_online, tau, spec.operator)
    return operators.get(spec.operator)(q_targ, tau)


def make_learner(spec: LearnerSpec) -> Learner:
    """The pure init / update functions of the learner described by `spec`."""
    net = networks.make(spec.network, spec.n_actions)
    tx = make_optimizer(spec)
    huber = spec.loss == "huber"

    def q_values(params: Params, obs: jax.Array) -> jax.Array:
        return net.apply(params, obs)

    def init(key: jax.Array) -> LearnerState:
        params = net.init(key, jnp.zeros((1, *spec.obs_shape), jnp.float32))
        return LearnerState(params, params, tx.init(params), jnp.zeros((), jnp.int32))

    def n_step_targets(
        params: Params, target_params: Params, window: Window, hyper: Hyper
    ) -> tuple[jax.Array, jax.Array]:
        """(q_targ at τ, q_targ at τ = 0) for the batch, both without gradient."""
        q_next = q_values(target_params, window.next_obs)
        q_next_online = q_values(params, window.next_obs) if spec.double else q_next
        v_next = bootstrap_value(spec, q_next, q_next_online, hyper.tau)
        v_hard = bootstrap_value(spec, q_next, q_next_online, jnp.zeros(()))
        bonus = jnp.zeros_like(v_next)
        if spec.entropy_bonus and spec.n_step > 1:
            batch, n = window.action.shape
            q_mid = q_values(target_params, window.obs.reshape(batch * n, *spec.obs_shape))
            logp = jnp.log(operators.boltzmann_policy(q_mid, hyper.tau) + 1e-30)
            logp_taken = jnp.take_along_axis(
                logp.reshape(batch, n, -1), window.action[..., None], axis=-1
            )[..., 0]
            bonus = jax.vmap(targets.entropy_bonus, (0, 0, None, None))(
                logp_taken, window.mask, hyper.tau, hyper.gamma
            )
        per_window = jax.vmap(targets.n_step_target, (0, 0, 0, 0, None, 0))
        args = (window.reward, window.mask, window.terminal)
        q_targ = per_window(*args, v_next, hyper.gamma, bonus)
        q_targ_hard = per_window(*args, v_hard, hyper.gamma, jnp.zeros_like(bonus))
        return jax.lax.stop_gradient(q_targ), jax.lax.stop_gradient(q_targ_hard)

    def loss_fn(params: Params, state: LearnerState, window: Window, hyper: Hyper):
        q_all = q_values(params, window.obs[:, 0])
        q_sa = jnp.take_along_axis(q_all, window.action[:, :1], axis=-1)[:, 0]
        q_targ, q_targ_hard = n_step_targets(params, state.target_params, window, hyper)
        td_error = q_targ - q_sa
        per_sample = optax.huber_loss(td_error) if huber else 0.5 * td_error**2
        aux = (q_all, q_sa, q_targ, q_targ_hard, td_error)
        return jnp.mean(per_sample), aux

    def update(state: LearnerState, window: Window, hyper: Hyper):
        chex.assert_rank([window.action, window.reward, window.terminal], [2, 2, 1])
        chex.assert_equal(window.action.shape[1], spec.n_step)
        (loss, (q_all, q_sa, q_targ, q_targ_hard, td_error)), grads = jax.value_and_grad(
            loss_fn, has_aux=True
        )(state.params, state, window, hyper)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        updates = jax.tree.map(lambda u: hyper.lr * u, updates)
        params = optax.apply_updates(state.params, updates)
        n = state.updates + 1
        copy = jnp.where(hyper.target_period > 0, n % jnp.maximum(hyper.target_period, 1) == 0, 0)
        c = jnp.where(hyper.target_period > 0, copy.astype(jnp.float32), hyper.polyak)
        target_params = optax.incremental_update(params, state.target_params, c)

        metrics = {
            "loss": loss,
            "td_error": jnp.mean(td_error),
            "td_abs": jnp.mean(jnp.abs(td_error)),
            "q_mean": jnp.mean(q_sa),
            "target_mean": jnp.mean(q_targ),
            "soft_hard_gap": jnp.mean(q_targ - q_targ_hard),
            "q_spread": jnp.mean(jnp.max(q_all, -1) - jnp.min(q_all, -1)),
            "grad_norm": optax.global_norm(grads),
        }
        return LearnerState(params, target_params, opt_state, n), metrics

    return Learner(init=init, update=update, q_values=q_values, targets=n_step_targets)
