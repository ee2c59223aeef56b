"""Replay buffer and n-step windows, checked against a brute-force walk over the raw stream."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softq_lab.core import replay, targets


def random_stream(rng: np.random.Generator, steps: int, obs_dim: int = 3):
    """A stream of episodes, some terminated, some truncated, some shorter than n."""
    obs, rows = rng.normal(size=obs_dim), []
    for _ in range(steps):
        next_obs = rng.normal(size=obs_dim)
        u = rng.random()
        terminated, truncated = u < 0.15, 0.15 <= u < 0.25
        rows.append((obs, rng.integers(3), rng.normal(), terminated, truncated, next_obs))
        obs = rng.normal(size=obs_dim) if (terminated or truncated) else next_obs  # reset obs
    return rows


def fill(rows, capacity, chunk=5):
    state = replay.init(capacity, 1, (3,), 2)
    for i in range(0, len(rows), chunk):
        part = rows[i : i + chunk]
        o, a, r, te, tr, no = (np.asarray(x) for x in zip(*part, strict=True))
        state = replay.add(
            state,
            replay.Transition(
                o[:, None],
                a[:, None],
                r[:, None],
                te[:, None],
                tr[:, None],
                no[:, None],
                np.ones((len(part), 1, 2), bool),
            ),
        )
    return state


def brute_force_target(rows, start, n, gamma, value):
    """G by walking the stored stream forward from `start` (rows hold only stored transitions)."""
    g, k = 0.0, 0
    while True:
        _, _, r, term, trunc, next_obs = rows[start + k]
        g += gamma**k * r
        k += 1
        if term:
            return g
        if trunc or k == n or start + k == len(rows):
            return g + gamma**k * value(next_obs)


@pytest.mark.parametrize("n_step", [1, 2, 3, 5])
@pytest.mark.parametrize("capacity,steps", [(64, 40), (32, 90)])  # not full; wrapped around
@pytest.mark.parametrize("chunk", [5, 1])  # several rows per write, or one (an in-place update)
def test_n_step_targets_match_brute_force(n_step, capacity, steps, chunk):
    rows = random_stream(np.random.default_rng(n_step + steps), steps)
    state = fill(rows, capacity, chunk)
    stored = rows[-min(steps, capacity) :]  # the oldest rows were overwritten
    gamma, w = 0.9, np.array([0.3, -1.0, 2.0])
    value = lambda o: float(np.tanh(o @ w))  # noqa: E731  (any function of the bootstrap obs)

    age = jnp.arange(len(stored))
    win = replay.windows(state, age, jnp.zeros_like(age), n_step)
    v_next = jnp.tanh(win.next_obs @ w)
    g = jax.vmap(targets.n_step_target, (0, 0, 0, 0, None))(
        win.reward, win.mask, win.terminal, v_next, gamma
    )
    expected = [brute_force_target(stored, i, n_step, gamma, value) for i in range(len(stored))]
    np.testing.assert_allclose(g, expected, rtol=1e-5, atol=1e-5)


def test_window_never_bootstraps_from_the_next_episode():
    # episode 1: two steps, terminated; episode 2 starts with a different obs
    rows = [
        (np.full(3, 1.0), 0, 1.0, False, False, np.full(3, 2.0)),
        (np.full(3, 2.0), 0, 1.0, True, False, np.full(3, 3.0)),  # terminal obs 3
        (np.full(3, 9.0), 0, 5.0, False, True, np.full(3, 10.0)),  # next episode, truncated
    ]
    state = fill(rows, 8)
    win = replay.windows(state, jnp.array([0, 1, 2]), jnp.zeros(3, int), 3)
    np.testing.assert_array_equal(win.mask, [[1, 1, 0], [1, 0, 0], [1, 0, 0]])
    np.testing.assert_array_equal(win.terminal, [True, True, False])
    np.testing.assert_array_equal(win.next_obs[:, 0], [3.0, 3.0, 10.0])  # never 9.0 (a reset obs)
    np.testing.assert_array_equal(win.reward, [[1, 1, 0], [1, 0, 0], [5, 0, 0]])


def test_truncated_window_bootstraps_from_the_final_observation_with_gamma_power():
    rows = [
        (np.zeros(3), 0, 1.0, False, False, np.ones(3)),
        (np.ones(3), 1, 2.0, False, True, np.full(3, 7.0)),  # time limit hit
    ]
    state = fill(rows, 4)
    win = replay.windows(state, jnp.array([0]), jnp.zeros(1, int), 4)
    g = targets.n_step_target(win.reward[0], win.mask[0], win.terminal[0], jnp.float32(10.0), 0.5)
    assert float(g) == pytest.approx(1.0 + 0.5 * 2.0 + 0.5**2 * 10.0)


def test_sample_is_seeded_and_uniform_over_stored_rows():
    rows = random_stream(np.random.default_rng(0), 20)
    state = fill(rows, 32)
    a = replay.sample(state, jax.random.key(1), 4096, 1)
    b = replay.sample(state, jax.random.key(1), 4096, 1)
    np.testing.assert_array_equal(a.obs, b.obs)
    first_obs = np.array([r[0][0] for r in rows])
    idx = np.argmin(np.abs(np.asarray(a.obs[:, 0, 0])[:, None] - first_obs[None]), axis=1)
    counts = np.bincount(idx, minlength=20)
    assert counts.min() > 4096 / 20 * 0.6 and counts.max() < 4096 / 20 * 1.4


def test_add_and_sample_are_jittable_and_the_buffer_wraps():
    state = replay.init(4, 2, (1,), 2)
    chunk = replay.Transition(
        obs=jnp.arange(6.0).reshape(3, 2, 1),
        action=jnp.zeros((3, 2), int),
        reward=jnp.arange(6.0).reshape(3, 2),
        terminated=jnp.zeros((3, 2), bool),
        truncated=jnp.zeros((3, 2), bool),
        next_obs=jnp.zeros((3, 2, 1)),
        next_mask=jnp.ones((3, 2, 2), bool),
    )
    add = jax.jit(replay.add)
    state = add(add(state, chunk), chunk)
    assert int(state.size) == 4 and int(state.pos) == 2
    win = jax.jit(replay.sample, static_argnums=(2, 3))(state, jax.random.key(0), 8, 2)
    assert win.obs.shape == (8, 2, 1) and win.mask.shape == (8, 2)


def test_window_carries_the_valid_actions_of_every_state_it_visits():
    """next_mask: the mask at S_{t+m}; action_mask[:, k]: the mask at S_{t+k} (stored with step t+k−1)."""
    buf = replay.init(8, 1, (1,), 3)
    masks = jnp.array([[1, 1, 0], [0, 1, 1], [1, 0, 1]], bool)
    for t in range(3):
        step = replay.Transition(
            obs=jnp.full((1, 1, 1), t, jnp.float32),
            action=jnp.zeros((1, 1), jnp.int32),
            reward=jnp.zeros((1, 1)),
            terminated=jnp.zeros((1, 1), bool),
            truncated=jnp.zeros((1, 1), bool),
            next_obs=jnp.full((1, 1, 1), t + 1, jnp.float32),
            next_mask=masks[t][None, None],
        )
        buf = replay.add(buf, step)
    win = replay.windows(buf, jnp.array([0]), jnp.array([0]), 3)
    np.testing.assert_array_equal(win.next_mask[0], masks[2])
    np.testing.assert_array_equal(win.action_mask[0], [[1, 1, 1], masks[0], masks[1]])
