"""The JAX classic-control envs against gymnasium's: same steps from the same state, same resets.

Rollout parity runs ≥ 10,000 steps per env across many episodes with the same random actions: in
float64 (gymnasium's precision) the JAX env follows gymnasium from each reset to the episode's end —
except Acrobot, a chaotic double pendulum, where XLA's and numpy's sin/cos differ in the last bit and
that difference grows to 1e-6 within a few hundred steps, so it is re-synchronised every 100 steps; in
float32 each step starts from gymnasium's exact state.
"""

import contextlib

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softq_lab.envs import classic_control, functional
from softq_lab.envs.classic_control import PhysicsState

IDS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0"]
STEPS = 10_000


@contextlib.contextmanager
def float64():
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", False)


def jax_state(env: gym.Env) -> PhysicsState:
    """The JAX state of a gymnasium env: its physics vector and its elapsed steps."""
    physics = np.asarray(env.unwrapped.state, dtype=np.float64)
    return PhysicsState(jnp.asarray(physics), jnp.asarray(env._elapsed_steps, jnp.int32))


def compare(env_id: str, resync_every: int | None, rtol: float, atol: float) -> int:
    """Run gymnasium and JAX side by side for STEPS steps; returns the number of episodes."""
    gym_env = gym.make(env_id)
    jenv = classic_control.ENVS[env_id]()
    step = jax.jit(jenv.step)
    rng = np.random.default_rng(0)
    gym_env.reset(seed=0)
    state = jax_state(gym_env)
    episodes = 0
    for i in range(STEPS):
        if resync_every is not None and i % resync_every == 0:
            state = jax_state(gym_env)
        action = int(rng.integers(jenv.n_actions))
        obs, reward, terminated, truncated, _ = gym_env.step(action)
        state, j_obs, j_reward, j_term, j_trunc = step(state, jnp.int32(action), jax.random.key(i))
        np.testing.assert_allclose(
            np.asarray(j_obs), obs, rtol=rtol, atol=atol, err_msg=f"step {i}"
        )
        assert float(j_reward) == reward, f"step {i}"
        assert (bool(j_term), bool(j_trunc)) == (terminated, truncated), f"step {i}"
        if terminated or truncated:
            episodes += 1
            gym_env.reset(seed=i)
            state = jax_state(gym_env)
    return episodes


@pytest.mark.parametrize("env_id", IDS)
def test_follows_gymnasium_through_whole_episodes_in_float64(env_id):
    with float64():
        # the observations are float32 casts of float64 physics: equal up to an ulp of float32
        resync = 100 if env_id == "Acrobot-v1" else None
        episodes = compare(env_id, resync_every=resync, rtol=1e-6, atol=1e-6)
    assert episodes >= 20


@pytest.mark.parametrize("env_id", IDS)
def test_every_step_matches_gymnasium_to_float32_tolerance(env_id):
    episodes = compare(env_id, resync_every=1, rtol=1e-5, atol=1e-5)
    assert episodes >= 20


def test_time_limits_are_gymnasium_s_and_can_be_set():
    assert [classic_control.ENVS[i]().max_episode_steps for i in IDS] == [
        gym.spec(i).max_episode_steps for i in IDS
    ]
    env = classic_control.cartpole(max_episode_steps=7)
    state, _ = env.reset(jax.random.key(0))
    for _ in range(7):
        state, _, _, _, truncated = env.step(state, jnp.int32(0), jax.random.key(0))
    assert bool(truncated) and int(state.t) == 7


@pytest.mark.parametrize(
    ("env_id", "low", "high"),
    [
        ("CartPole-v1", [-0.05] * 4, [0.05] * 4),
        ("Acrobot-v1", [-0.1] * 4, [0.1] * 4),
        ("MountainCar-v0", [-0.6, 0.0], [-0.4, 0.0]),
    ],
)
def test_resets_are_drawn_from_gymnasium_s_distribution(env_id, low, high):
    env = classic_control.ENVS[env_id]()
    states, _ = jax.vmap(env.reset)(jax.random.split(jax.random.key(0), 4000))
    physics = np.asarray(states.physics)
    low, high = np.array(low), np.array(high)
    assert np.all(physics >= low) and np.all(physics <= high)
    spread = high - low
    np.testing.assert_allclose(physics.min(0), low, atol=0.01 * spread.max())
    np.testing.assert_allclose(physics.max(0), high, atol=0.01 * spread.max())
    np.testing.assert_allclose(physics.mean(0), (low + high) / 2, atol=0.03 * spread.max())


def test_the_same_key_gives_the_same_reset_and_different_keys_differ():
    env = classic_control.cartpole()
    a, b, c = (env.reset(jax.random.key(k))[1] for k in (1, 1, 2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("limit", [20, 5])
def test_auto_reset_in_a_vmapped_scan_keeps_terminated_and_truncated_apart(limit):
    env = classic_control.cartpole(max_episode_steps=limit)

    def body(state, key):
        out = functional.auto_reset_step(env, state, jnp.int32(1), key)  # always push right
        return out.state, out

    def run(key):
        state, _ = env.reset(key)
        return jax.lax.scan(body, state, jax.random.split(key, 1000))[1]

    out = jax.jit(jax.vmap(run))(jax.random.split(jax.random.key(0), 8))
    term, trunc = np.asarray(out.terminated), np.asarray(out.truncated)
    if limit == 20:  # pushing right topples the pole in < 20 steps: only terminations
        assert term.any() and not trunc.any()
    else:  # 5 steps is too short to topple: only time limits
        assert trunc.any() and not term.any()
    done = term | trunc
    final, obs = np.asarray(out.final_obs), np.asarray(out.obs)
    # after a done step the next observation is a fresh reset, and the final one is not
    assert np.all(np.abs(obs[done]) <= 0.05)
    assert np.all(np.abs(final[done & term]).max(-1) > 0.05)
    # without a done step, obs and final_obs are the same observation
    np.testing.assert_array_equal(obs[~done], final[~done])
