"""The table-driven JAX env against the gymnasium envs it is built from: same model, same transition
distribution, same resets, masks and time limits."""

import functools

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import softq_lab.envs  # noqa: F401  (registers MaxBias-v0)
from softq_lab.envs import functional, tabular
from softq_lab.envs.maxbias import LEFT, RIGHT, STATE_A, STATE_B

ENVS = {
    "FrozenLake-4x4": ("FrozenLake-v1", {"map_name": "4x4", "is_slippery": True}),
    "FrozenLake-8x8": ("FrozenLake-v1", {"map_name": "8x8", "is_slippery": True}),
    "CliffWalking": ("CliffWalking-v1", {}),
    "Taxi": ("Taxi-v4", {}),
    "MaxBias": ("MaxBias-v0", {}),
}
SAMPLES = 4000  # JAX transitions per (s, a)
GYM_SAMPLES = 300  # gymnasium transitions per (s, a)


def make(name):
    env_id, kwargs = ENVS[name]
    return gym.make(env_id, **kwargs)


def pairs(env, rng, most=24):
    """(s, a) pairs to test: valid ones of states with any outcome, at most `most` of them."""
    model = tabular.tables(env)
    candidates = [(s, a) for s in range(model.mask.shape[0]) for a in range(model.mask.shape[1])
                  if model.mask[s, a] and np.isfinite(model.reward[s, a]).all()]  # fmt: skip
    picked = rng.choice(len(candidates), size=min(most, len(candidates)), replace=False)
    return [candidates[i] for i in picked]


@pytest.mark.parametrize("name", ENVS)
def test_the_tables_are_the_gymnasium_model(name):
    env = make(name)
    model, base = tabular.tables(env), env.unwrapped
    for s in range(model.mask.shape[0]):
        for a in range(model.mask.shape[1]):
            outcomes = base.P[s][a]
            k = len(outcomes)
            np.testing.assert_array_equal(model.prob[s, a, :k], [o[0] for o in outcomes])
            np.testing.assert_array_equal(model.next_state[s, a, :k], [o[1] for o in outcomes])
            np.testing.assert_array_equal(
                model.reward[s, a, :k], np.float32([o[2] for o in outcomes])
            )
            np.testing.assert_array_equal(model.terminated[s, a, :k], [o[3] for o in outcomes])
            assert np.all(model.prob[s, a, k:] == 0)
        if hasattr(base, "action_mask"):
            np.testing.assert_array_equal(model.mask[s], np.asarray(base.action_mask(s), bool))


def outcome_counts(name, s, a, draws, sampler):
    """How often each outcome index k of (s, a) was drawn, identified by (next state, reward)."""
    env = make(name)
    outcomes = env.unwrapped.P[s][a]
    counts = np.zeros(len(outcomes))
    for s_next, r, done in sampler(name, s, a, draws):
        matches = [k for k, o in enumerate(outcomes) if o[1] == s_next and o[3] == done
                   and (o[2] == r or name == "MaxBias")]  # fmt: skip
        assert matches, (s, a, s_next, r, done)
        counts[matches[0]] += 1
    merged = {}  # outcomes with the same (next state, reward, done) are indistinguishable
    for k, o in enumerate(outcomes):
        key = (o[1], o[2] if name != "MaxBias" else 0, o[3])
        merged.setdefault(key, [0.0, 0.0])
        merged[key][0] += counts[k]
        merged[key][1] += o[0]
    return np.array([v[0] for v in merged.values()]), np.array([v[1] for v in merged.values()])


@functools.cache
def vmapped_step(name):
    jenv = tabular.from_gym(make(name), name, 1000)
    return jenv, jax.jit(jax.vmap(jenv.step, (None, None, 0)))


def jax_sampler(name, s, a, draws):
    jenv, step = vmapped_step(name)
    state = tabular.TabularState(jnp.int32(s), jnp.int32(0), jnp.zeros(jenv.obs_shape, bool))
    keys = jax.random.split(jax.random.key(s * 97 + a), draws)
    new, _, r, term, _ = step(state, jnp.int32(a), keys)
    return zip(np.asarray(new.s), np.asarray(r), np.asarray(term), strict=True)


def gym_sampler(name, s, a, draws):
    env = make(name)
    env.reset(seed=s * 97 + a)
    for _ in range(draws):
        env.unwrapped.s = s
        if hasattr(env.unwrapped, "_went_left"):
            env.unwrapped._went_left = False
        s_next, r, term, _, _ = env.unwrapped.step(a)
        yield int(s_next), float(r), bool(term)


@pytest.mark.parametrize("name", ENVS)
@pytest.mark.parametrize(("sampler", "draws"), [(jax_sampler, SAMPLES), (gym_sampler, GYM_SAMPLES)])
def test_transitions_follow_the_model_in_both_envs(name, sampler, draws):
    """A chi-square test per (s, a) at p > 1e-4 (over ≤ 24 pairs per env: a false alarm ~ 0.2%)."""
    rng = np.random.default_rng(0)
    for s, a in pairs(make(name), rng):
        counts, probs = outcome_counts(name, s, a, draws, sampler)
        if len(probs) == 1:
            assert counts[0] == draws
            continue
        expected = probs / probs.sum() * draws
        assert stats.chisquare(counts, expected).pvalue > 1e-4, (name, s, a, counts, expected)


@pytest.mark.parametrize("sampler", [jax_sampler, gym_sampler])
def test_maxbias_rewards_at_b_are_gaussian_around_the_mean(sampler):
    rewards = np.array([r for _, r, _ in sampler("MaxBias", STATE_B, 3, 4000)])
    se = 1.0 / np.sqrt(len(rewards))
    assert abs(rewards.mean() - (-0.1)) < 4 * se
    assert abs(rewards.std() - 1.0) < 4 * se * np.sqrt(2)


@pytest.mark.parametrize(("name", "start"), [("FrozenLake-4x4", 0), ("CliffWalking", 36)])
def test_resets_start_where_gymnasium_starts(name, start):
    jenv = tabular.from_gym(make(name), "x", 200)
    states, obs = jax.vmap(jenv.reset)(jax.random.split(jax.random.key(0), 100))
    assert np.all(np.asarray(states.s) == start)
    assert np.all(np.asarray(obs).argmax(-1) == start)


def test_taxi_resets_follow_its_initial_distribution():
    env = make("Taxi")
    jenv = tabular.from_gym(env, "x", None)
    states, _ = jax.vmap(jenv.reset)(jax.random.split(jax.random.key(0), 30_000))
    initial = env.unwrapped.initial_state_distrib
    counts = np.bincount(np.asarray(states.s), minlength=len(initial))
    assert set(np.flatnonzero(counts)) <= set(np.flatnonzero(initial))
    support = initial > 0
    assert stats.chisquare(counts[support], initial[support] * 30_000).pvalue > 1e-4


def test_time_limits_are_gymnasium_s_and_truncation_stays_apart_from_termination():
    assert tabular.from_gym(make("FrozenLake-4x4"), "x", None).max_episode_steps == 100
    assert tabular.from_gym(make("Taxi"), "x", None).max_episode_steps == 200
    jenv = tabular.from_gym(make("CliffWalking"), "x", 7)

    def body(state, key):  # always "up" from the start: never terminates on CliffWalking
        out = functional.auto_reset_step(jenv, state, jnp.int32(0), key)
        return out.state, out

    state, _ = jenv.reset(jax.random.key(0))
    _, out = jax.lax.scan(body, state, jax.random.split(jax.random.key(1), 21))
    truncated, terminated = np.asarray(out.truncated), np.asarray(out.terminated)
    assert np.flatnonzero(truncated).tolist() == [6, 13, 20] and not terminated.any()


def test_cliffwalking_needs_a_time_limit():
    with pytest.raises(ValueError, match="time limit"):
        tabular.from_gym(make("CliffWalking"), "x", None)


def test_maxbias_reports_left_exactly_for_episodes_that_went_left_and_never_truncates():
    env = tabular.from_gym(make("MaxBias"), "MaxBias-v0", None)
    for first, left in ((LEFT, 1.0), (RIGHT, 0.0)):
        state, _ = env.reset(jax.random.key(0))
        assert bool(env.action_mask(state)[first])
        state, _, _, terminated, truncated = env.step(state, jnp.int32(first), jax.random.key(1))
        if first == LEFT:
            assert not bool(terminated) and int(state.s) == STATE_B
            state, _, _, terminated, truncated = env.step(state, jnp.int32(5), jax.random.key(2))
        assert bool(terminated) and not bool(truncated)
        assert float(env.episode_metrics(state)["maxbias/left"]) == left
    state, _ = env.reset(jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(env.action_mask(state)), [1, 1] + [0] * 8)
    assert int(state.s) == STATE_A
