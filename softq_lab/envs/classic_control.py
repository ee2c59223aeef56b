"""Pure JAX ports of gymnasium's classic control: CartPole-v1, Acrobot-v1, MountainCar-v0.

Same dynamics, rewards, termination, time limits and reset distributions as gymnasium 1.4's
`gymnasium.envs.classic_control` (checked step for step by `tests/test_envs_classic_control.py`), as
`functional.JaxEnv`s: pure, jittable, vmappable. The physics runs in JAX's default float type
(float32; float64 under `jax_enable_x64`, which is what gymnasium computes in); observations are
float32, as gymnasium returns them. gymnasium's own `phys2d` CartPole is not used: its physics and
vector auto-reset differ from the classic env's.

Each factory takes the time limit (None: the id's own) and the keyword arguments of the gymnasium
class that change the task (CartPole's `sutton_barto_reward`, MountainCar's `goal_velocity`); any
other keyword is a TypeError, so that a caller can fall back to gymnasium.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from softq_lab.envs.functional import JaxEnv, no_mask, no_metrics


class PhysicsState(NamedTuple):
    physics: jax.Array  # the env's own state vector (gymnasium's `env.unwrapped.state`)
    t: jax.Array  # steps taken in this episode


def _limited(
    env_id: str,
    n_actions: int,
    obs_size: int,
    limit: int,
    sample: Callable[[jax.Array], jax.Array],
    observe: Callable[[jax.Array], jax.Array],
    dynamics: Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array, jax.Array]],
) -> JaxEnv:
    """A JaxEnv from `sample(key) -> physics`, `observe(physics) -> obs` and
    `dynamics(physics, action) -> (physics, reward, terminated)`, with a `limit`-step time limit."""

    def reset(key: jax.Array) -> tuple[PhysicsState, jax.Array]:
        physics = sample(key)
        return PhysicsState(physics, jnp.zeros((), jnp.int32)), observe(physics)

    def step(state: PhysicsState, action: jax.Array, key: jax.Array):
        del key  # deterministic dynamics
        physics, reward, terminated = dynamics(state.physics, action)
        t = state.t + 1
        return PhysicsState(physics, t), observe(physics), reward, terminated, t >= limit

    return JaxEnv(
        id=env_id,
        obs_shape=(obs_size,),
        n_actions=n_actions,
        max_episode_steps=limit,
        reset=reset,
        step=step,
        action_mask=no_mask(n_actions),
        episode_metrics=no_metrics,
    )


def _float(x: jax.Array) -> jax.Array:
    return jnp.asarray(x, jnp.float32)


def cartpole(max_episode_steps: int | None = None, sutton_barto_reward: bool = False) -> JaxEnv:
    """CartPole-v1: Euler integration at τ = 0.02 s; +1 per step (Sutton & Barto's reward: 0 per
    step, −1 on failure); terminated when |x| > 2.4 or |θ| > 12°; 500 steps; x, ẋ, θ, θ̇ ~ U(±0.05)."""
    gravity, masscart, masspole, length, force_mag, dt = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    total_mass, polemass_length = masspole + masscart, masspole * length
    theta_threshold, x_threshold = 12 * 2 * math.pi / 360, 2.4

    def sample(key: jax.Array) -> jax.Array:
        return jax.random.uniform(key, (4,), jnp.asarray(0.0).dtype, -0.05, 0.05)

    def dynamics(s: jax.Array, action: jax.Array):
        x, x_dot, theta, theta_dot = s[0], s[1], s[2], s[3]
        force = jnp.where(action == 1, force_mag, -force_mag)
        costheta, sintheta = jnp.cos(theta), jnp.sin(theta)
        temp = (force + polemass_length * theta_dot**2 * sintheta) / total_mass
        thetaacc = (gravity * sintheta - costheta * temp) / (
            length * (4.0 / 3.0 - masspole * costheta**2 / total_mass)
        )
        xacc = temp - polemass_length * thetaacc * costheta / total_mass
        s = jnp.stack(
            [x + dt * x_dot, x_dot + dt * xacc, theta + dt * theta_dot, theta_dot + dt * thetaacc]
        )
        terminated = (jnp.abs(s[0]) > x_threshold) | (jnp.abs(s[2]) > theta_threshold)
        reward = jnp.where(terminated, -1.0, 0.0) if sutton_barto_reward else jnp.ones(())
        return s, _float(reward), terminated

    limit = 500 if max_episode_steps is None else max_episode_steps
    return _limited("CartPole-v1", 2, 4, limit, sample, _float, dynamics)


def acrobot(max_episode_steps: int | None = None) -> JaxEnv:
    """Acrobot-v1 ("book" dynamics, no torque noise): one RK4 step of dt = 0.2 s per action (torque
    −1, 0, +1); angles wrapped to [−π, π], velocities bounded to 4π and 9π; −1 per step until the tip
    rises one link above the base (terminated); 500 steps; θ1, θ2, θ̇1, θ̇2 ~ U(±0.1) in float32."""
    m1 = m2 = l1 = moi = 1.0
    lc1 = lc2 = 0.5
    g, dt, pi = 9.8, 0.2, math.pi
    max_vel_1, max_vel_2 = 4 * pi, 9 * pi

    def sample(key: jax.Array) -> jax.Array:
        # gymnasium draws in float64 and stores float32
        s = jax.random.uniform(key, (4,), jnp.asarray(0.0).dtype, -0.1, 0.1)
        return s.astype(jnp.float32).astype(s.dtype)

    def observe(s: jax.Array) -> jax.Array:
        return _float(
            jnp.stack([jnp.cos(s[0]), jnp.sin(s[0]), jnp.cos(s[1]), jnp.sin(s[1]), s[2], s[3]])
        )

    def dsdt(s: jax.Array, torque: jax.Array) -> jax.Array:
        theta1, theta2, dtheta1, dtheta2 = s[0], s[1], s[2], s[3]
        d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * jnp.cos(theta2)) + 2 * moi
        d2 = m2 * (lc2**2 + l1 * lc2 * jnp.cos(theta2)) + moi
        phi2 = m2 * lc2 * g * jnp.cos(theta1 + theta2 - pi / 2.0)
        phi1 = (
            -m2 * l1 * lc2 * dtheta2**2 * jnp.sin(theta2)
            - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * jnp.sin(theta2)
            + (m1 * lc1 + m2 * l1) * g * jnp.cos(theta1 - pi / 2)
            + phi2
        )
        ddtheta2 = (
            torque + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1**2 * jnp.sin(theta2) - phi2
        ) / (m2 * lc2**2 + moi - d2**2 / d1)
        ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
        return jnp.stack([dtheta1, dtheta2, ddtheta1, ddtheta2])

    def wrap(x: jax.Array) -> jax.Array:
        # gymnasium's loop, unrolled once: one step moves an angle by < 2π (|θ̇|·dt ≤ 9π·0.2)
        return jnp.where(x > pi, x - 2 * pi, jnp.where(x < -pi, x + 2 * pi, x))

    def dynamics(s: jax.Array, action: jax.Array):
        torque = (action - 1).astype(s.dtype)
        k1 = dsdt(s, torque)
        k2 = dsdt(s + dt / 2 * k1, torque)
        k3 = dsdt(s + dt / 2 * k2, torque)
        k4 = dsdt(s + dt * k3, torque)
        ns = s + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        ns = jnp.stack(
            [
                wrap(ns[0]),
                wrap(ns[1]),
                jnp.clip(ns[2], -max_vel_1, max_vel_1),
                jnp.clip(ns[3], -max_vel_2, max_vel_2),
            ]
        )
        terminated = -jnp.cos(ns[0]) - jnp.cos(ns[1] + ns[0]) > 1.0
        return ns, _float(jnp.where(terminated, 0.0, -1.0)), terminated

    limit = 500 if max_episode_steps is None else max_episode_steps
    return _limited("Acrobot-v1", 3, 6, limit, sample, observe, dynamics)


def mountain_car(max_episode_steps: int | None = None, goal_velocity: float = 0.0) -> JaxEnv:
    """MountainCar-v0: v ← clip(v + (a − 1)·0.001 − 0.0025·cos(3x), ±0.07), x ← clip(x + v, −1.2, 0.6),
    v ← 0 at the left wall; −1 per step until x ≥ 0.5 with v ≥ `goal_velocity`; 200 steps;
    x ~ U(−0.6, −0.4), v = 0."""
    force, gravity, max_speed = 0.001, 0.0025, 0.07
    min_position, max_position, goal_position = -1.2, 0.6, 0.5

    def sample(key: jax.Array) -> jax.Array:
        x = jax.random.uniform(key, (), jnp.asarray(0.0).dtype, -0.6, -0.4)
        return jnp.stack([x, jnp.zeros_like(x)])

    def dynamics(s: jax.Array, action: jax.Array):
        position, velocity = s[0], s[1]
        velocity = velocity + (action - 1) * force + jnp.cos(3 * position) * (-gravity)
        velocity = jnp.clip(velocity, -max_speed, max_speed)
        position = jnp.clip(position + velocity, min_position, max_position)
        velocity = jnp.where((position == min_position) & (velocity < 0), 0.0, velocity)
        terminated = (position >= goal_position) & (velocity >= goal_velocity)
        return jnp.stack([position, velocity]), _float(-1.0), terminated

    limit = 200 if max_episode_steps is None else max_episode_steps
    return _limited("MountainCar-v0", 3, 2, limit, sample, _float, dynamics)


ENVS: dict[str, Callable[..., JaxEnv]] = {
    "CartPole-v1": cartpole,
    "Acrobot-v1": acrobot,
    "MountainCar-v0": mountain_car,
}
