"""The soft-Q learner: `init(key) -> LearnerState` and `update(state, window, hyper) -> (state, metrics)`.

Pure functions of arrays, optax style. What fixes shapes or code paths is static (`LearnerSpec`,
hashable); what a sweep or a schedule varies is traced (`Hyper`: τ, γ, learning rate, target update),
so one compiled update serves every run of a sweep and a batch of runs can be `jax.vmap`ped.

One update, for a batch of n-step windows (see `replay.Window`):

    q_sa     = q_θ(S_t, A_t)
    V        = op_τ(q_θ⁻(S_{t+m}, ·))                  (double: q_θ⁻ evaluates π_τ(q_θ(S_{t+m}, ·)))
                                                       (over the actions valid at S_{t+m} only)
    q_targ   = stop_gradient(R^(n) + B^(n) + I^(n)·V)  (targets.n_step_target)
    td_error = q_targ − q_sa
    loss     = mean(huber(td_error))  or  mean(td_error² / 2)
    θ        ← θ − lr·optimizer(∇θ loss)               (optional global-norm clipping first)
    θ⁻       ← θ⁻ + c·(θ − θ⁻),  c = polyak, or 1 every `target_period` updates and 0 otherwise

`double` selects how θ⁻ is used:
- "none":   θ⁻ is a target network and V = op_τ(q_θ⁻).
- "target": Double DQN (van Hasselt, Guez & Silver 2016): θ⁻ is a target network that evaluates the
            online network's greedy (τ = 0) or Boltzmann choice (`operators.double_value`).
- "twin":   Double Q-learning (van Hasselt 2010): θ and θ⁻ are two estimators trained alike; each
            update, a fair coin picks which one learns, using the other to evaluate its own choice
            (no target network: polyak / period are unused). Acting uses their mean.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from softq_lab.core import networks, operators, targets
from softq_lab.core.replay import Window

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
    target_params: Params  # the target network, or the second estimator for double="twin"
    opt_state: optax.OptState  # a pair (one per estimator) for double="twin"
    updates: jax.Array  # number of updates done
    key: jax.Array  # the learner's own randomness (the twin coin, the double target's tie-breaks)


DOUBLE_MODES = ("none", "target", "twin")

# The names of `update`'s metrics, in order: drivers that sum them start from these without
# tracing an update (one trace of the whole update is ~0.25 s of a run's start-up).
METRICS = (
    "loss", "td_error", "td_abs", "q_mean", "target_mean", "soft_hard_gap", "q_spread", "grad_norm",
)  # fmt: skip


@dataclass(frozen=True)
class LearnerSpec:
    """Static structure of a learner: shapes, operator, loss and optimizer."""

    obs_shape: tuple[int, ...]
    n_actions: int
    network: networks.NetworkSpec = field(default_factory=networks.NetworkSpec)
    n_step: int = 1
    operator: str = "soft"
    double: str = "none"  # none | target | twin (see the module docstring)
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
    q_act: Any  # (LearnerState, obs [B, ...]) -> [B, A], the q the policies act on
    targets: Any  # (params, target_params, Window, Hyper, key=None) -> (q_targ at τ, at τ = 0)


def bootstrap_value(
    spec: LearnerSpec,
    q_targ: jax.Array,
    q_online: jax.Array,
    tau: jax.Array,
    mask: jax.Array,
    key: jax.Array | None = None,
) -> jax.Array:
    """V(S_{t+m}) under the spec's operator over the actions valid there (`mask`); double: the
    online net chooses (greedy ties at τ = 0 broken at random with `key`), the other evaluates."""
    if spec.double != "none":
        return operators.double_value(q_targ, q_online, tau, spec.operator, mask, key)
    return operators.get(spec.operator)(q_targ, tau, mask)


def make_learner(spec: LearnerSpec) -> Learner:
    """The pure init / update functions of the learner described by `spec`."""
    net = networks.make(spec.network, spec.n_actions)
    tx = make_optimizer(spec)
    huber = spec.loss == "huber"

    def q_values(params: Params, obs: jax.Array) -> jax.Array:
        return net.apply(params, obs)

    twin = spec.double == "twin"

    def q_act(state: LearnerState, obs: jax.Array) -> jax.Array:
        q = q_values(state.params, obs)
        return 0.5 * (q + q_values(state.target_params, obs)) if twin else q

    def init(key: jax.Array) -> LearnerState:
        key_a, key_b, key = jax.random.split(key, 3)
        obs = jnp.zeros((1, *spec.obs_shape), jnp.float32)
        params = net.init(key_a, obs)
        if twin:
            other = net.init(key_b, obs)
            opt_state = (tx.init(params), tx.init(other))
        else:
            other, opt_state = params, tx.init(params)
        return LearnerState(params, other, opt_state, jnp.zeros((), jnp.int32), key)

    def n_step_targets(
        params: Params,
        target_params: Params,
        window: Window,
        hyper: Hyper,
        key: jax.Array | None = None,
    ) -> tuple[jax.Array, jax.Array]:
        """(q_targ at τ, q_targ at τ = 0) for the batch, both without gradient; `key` breaks the
        double target's greedy ties (expected over them without)."""
        q_next = q_values(target_params, window.next_obs)
        q_next_online = q_values(params, window.next_obs) if spec.double != "none" else q_next
        mask = window.next_mask
        v_next = bootstrap_value(spec, q_next, q_next_online, hyper.tau, mask, key)
        v_hard = bootstrap_value(spec, q_next, q_next_online, jnp.zeros(()), mask, key)
        bonus = jnp.zeros_like(v_next)
        if spec.entropy_bonus and spec.n_step > 1:
            batch, n = window.action.shape
            q_mid = q_values(target_params, window.obs.reshape(batch * n, *spec.obs_shape))
            mid_mask = window.action_mask.reshape(batch * n, -1)
            logp = jnp.log(operators.boltzmann_policy(q_mid, hyper.tau, mid_mask) + 1e-30)
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

    def loss_fn(params: Params, other: Params, window: Window, hyper: Hyper, key: jax.Array):
        q_all = q_values(params, window.obs[:, 0])
        q_sa = jnp.take_along_axis(q_all, window.action[:, :1], axis=-1)[:, 0]
        q_targ, q_targ_hard = n_step_targets(params, other, window, hyper, key)
        td_error = q_targ - q_sa
        per_sample = optax.huber_loss(td_error) if huber else 0.5 * td_error**2
        aux = (q_all, q_sa, q_targ, q_targ_hard, td_error)
        return jnp.mean(per_sample), aux

    def learn(
        params: Params, other: Params, opt_state: Any, window: Window, hyper: Hyper, key: jax.Array
    ):
        """One optimizer step on `params`, with `other` as the target network / other estimator."""
        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, other, window, hyper, key
        )
        updates, opt_state = tx.update(grads, opt_state, params)
        updates = jax.tree.map(lambda u: hyper.lr * u, updates)
        return optax.apply_updates(params, updates), opt_state, loss, aux, grads

    def update(state: LearnerState, window: Window, hyper: Hyper):
        chex.assert_rank([window.action, window.reward, window.terminal], [2, 2, 1])
        chex.assert_equal(window.action.shape[1], spec.n_step)
        n = state.updates + 1
        key, coin, ties = jax.random.split(state.key, 3)
        if twin:
            swap = jax.random.bernoulli(coin)

            def pick(x: Any, y: Any) -> Any:  # x, or y when the coin says swap
                return jax.tree.map(lambda a, b: jnp.where(swap, b, a), x, y)

            a, b = pick(state.params, state.target_params), pick(state.target_params, state.params)
            opt_a, opt_b = pick(*state.opt_state), pick(*state.opt_state[::-1])
            a, opt_a, loss, aux, grads = learn(a, b, opt_a, window, hyper, ties)
            params, target_params = pick(a, b), pick(b, a)
            opt_state = (pick(opt_a, opt_b), pick(opt_b, opt_a))
        else:
            params, opt_state, loss, aux, grads = learn(
                state.params, state.target_params, state.opt_state, window, hyper, ties
            )
            period = hyper.target_period
            copy = (period > 0) & (n % jnp.maximum(period, 1) == 0)
            c = jnp.where(period > 0, copy.astype(jnp.float32), hyper.polyak)
            target_params = optax.incremental_update(params, state.target_params, c)

        q_all, q_sa, q_targ, q_targ_hard, td_error = aux
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
        assert tuple(metrics) == METRICS, "update's metrics and METRICS must name the same values"
        return LearnerState(params, target_params, opt_state, n, key), metrics

    return Learner(init=init, update=update, q_values=q_values, q_act=q_act, targets=n_step_targets)
