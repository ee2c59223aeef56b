"""The table-driven JAX env (`envs.tabular`) against the gymnasium envs it is built from: the same
model, transition distribution, resets, masks, time limits and episode metrics."""

import functools

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.wrappers import FlattenObservation
from scipy import stats

import softq_lab.envs  # noqa: F401  (registers MaxBias-v0)
from softq_lab.envs import functional, tabular
from softq_lab.envs.make import Float32Observation
from softq_lab.envs.maxbias import LEFT, RIGHT, STATE_A, STATE_B, TERMINAL

ENVS = {
    "FrozenLake-4x4": ("FrozenLake-v1", {"map_name": "4x4", "is_slippery": True}),
    "FrozenLake-8x8": ("FrozenLake-v1", {"map_name": "8x8", "is_slippery": True}),
    "CliffWalking": ("CliffWalking-v1", {}),
    "Taxi": ("Taxi-v4", {}),
    "Taxi-rainy": ("Taxi-v4", {"is_rainy": True}),  # stochastic moves: 0.8 / 0.1 / 0.1
    "MaxBias": ("MaxBias-v0", {}),
}
SAMPLES = 4000  # JAX transitions per (s, a)
GYM_SAMPLES = 300  # gymnasium transitions per (s, a)
TAXI_PAIRS = 120  # Taxi's (s, a) pairs tested for their transitions, of 3000
UP, RIGHT_, DOWN = 0, 1, 2  # CliffWalking's actions (3 = left)


def make(name, **extra):
    env_id, kwargs = ENVS[name]
    return gym.make(env_id, **kwargs, **extra)


@functools.cache
def setup(name):
    """(gymnasium env, its tables, the JAX env with a limit no test reaches)."""
    env = make(name)
    return env, tabular.tables(env), tabular.from_gym(env, name, 1000)


def states_at(s, n_states):
    """A batch of fresh `TabularState`s at the states `s`."""
    s = jnp.asarray(s, jnp.int32)
    return tabular.TabularState(s, jnp.zeros_like(s), jax.nn.one_hot(s, n_states, dtype=bool))


def pairs(name):
    """The (s, a) pairs whose transitions are tested: every pair the model allows (a finite
    reward; MaxBias's invalid actions are −inf and gymnasium's step refuses them), for Taxi a
    random subset."""
    model = setup(name)[1]
    ok = np.isfinite(model.reward).all(-1)
    found = np.argwhere(ok)
    if name.startswith("Taxi"):
        found = found[np.random.default_rng(0).choice(len(found), TAXI_PAIRS, replace=False)]
    return found


# --------------------------------------------------------------------------------------------------
# 1. The tables are the model


@pytest.mark.parametrize("name", ENVS)
def test_the_tables_are_the_gymnasium_model(name):
    env, model, _ = setup(name)
    base = env.unwrapped
    n_states, n_actions = model.mask.shape
    assert (n_states, n_actions) == (base.observation_space.n, base.action_space.n)
    for s in range(n_states):
        for a in range(n_actions):
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
    assert not model.mask.all() if hasattr(base, "action_mask") else model.mask.all()
    np.testing.assert_array_equal(model.initial, base.initial_state_distrib)
    if name == "MaxBias":
        np.testing.assert_array_equal(model.reward_std, base.reward_std)
        assert model.flags == {"maxbias/left": STATE_B}
    else:
        assert not model.reward_std.any() and model.flags == {}


@pytest.mark.parametrize("name", ENVS)
def test_action_masks_are_the_ones_gymnasium_reports_in_info(name):
    """At reset and after a step from every pair the model allows, the JAX mask of the state reached
    is gymnasium's `info["action_mask"]` (all True where the env reports none)."""
    env, model, jenv = setup(name)
    base, (n_states, n_actions) = env.unwrapped, model.mask.shape
    masks = np.asarray(jax.vmap(jenv.action_mask)(states_at(np.arange(n_states), n_states)))
    seen = set()

    def check(s, info):
        reported = np.asarray(info.get("action_mask", np.ones(n_actions)), bool)
        np.testing.assert_array_equal(masks[s], reported, err_msg=f"state {s}")
        seen.add(int(s))

    for seed in range(10):
        check(*env.reset(seed=seed))
    for s, a in np.argwhere(np.isfinite(model.reward).all(-1)):
        base.s = int(s)
        s_next, _, _, _, info = base.step(int(a))
        check(s_next, info)
    assert len(seen) >= 0.5 * n_states  # most states were reached and checked


def test_tables_refuse_what_they_cannot_drive():
    with pytest.raises(ValueError, match="fickle_passenger"):
        tabular.from_gym(gym.make("Taxi-v4", fickle_passenger=True), "Taxi-v4", None)
    env = make("FrozenLake-4x4")
    env.unwrapped.P[3][1] = [(0.5, 2, 0.0, False)]
    with pytest.raises(ValueError, match=r"P\[3\]\[1\].*not a distribution"):
        tabular.tables(env)


# --------------------------------------------------------------------------------------------------
# 2. Transitions: both envs sample the model


@functools.cache
def jax_transitions(name):
    """SAMPLES JAX transitions of each pair: next states, rewards, terminated, each [pairs, N]."""
    _, model, jenv = setup(name)
    n_states = model.mask.shape[0]

    def one(s, a, key):  # only what the test reads: jit drops the observations and `visited`
        new, _, r, terminated, _ = jenv.step(states_at(s, n_states), a, key)
        return new.s, r, terminated

    sample = jax.jit(jax.vmap(jax.vmap(one, (None, None, 0))))
    ps = pairs(name)
    keys = jax.random.split(jax.random.key(0), (len(ps), SAMPLES))
    return tuple(np.asarray(x) for x in sample(jnp.int32(ps[:, 0]), jnp.int32(ps[:, 1]), keys))


@functools.cache
def gym_transitions(name):
    """GYM_SAMPLES gymnasium transitions of each pair (`env.unwrapped.s = s`, then `step(a)`)."""
    env = make(name)
    base = env.unwrapped
    env.reset(seed=0)
    ps = pairs(name)
    s_next, reward = np.zeros((len(ps), GYM_SAMPLES), int), np.zeros((len(ps), GYM_SAMPLES))
    terminated = np.zeros((len(ps), GYM_SAMPLES), bool)
    for i, (s, a) in enumerate(ps):
        for j in range(GYM_SAMPLES):
            base.s = int(s)
            s_next[i, j], reward[i, j], terminated[i, j], _, _ = base.step(int(a))
    return s_next, reward, terminated


TRANSITIONS = {"jax": jax_transitions, "gymnasium": gym_transitions}


def outcome_counts(outcomes, s_next, reward, terminated, match_reward):
    """(draws of each distinct outcome of P[s][a], its probability). Outcomes with the same next
    state, reward and terminated flag are merged (FrozenLake's slips into a wall); the reward is not
    compared when `match_reward` is False (MaxBias: noisy). Asserts every draw is an outcome."""
    groups: dict[tuple, float] = {}
    for p, s2, r, done in outcomes:
        key = (int(s2), float(np.float32(r)) if match_reward else None, bool(done))
        groups[key] = groups.get(key, 0.0) + p
    matched = np.zeros(s_next.shape, bool)
    counts = []
    for s2, r, done in groups:
        hit = (s_next == s2) & (terminated == done)
        if r is not None:
            hit &= reward == r
        counts.append(hit.sum())
        matched |= hit
    assert matched.all(), list(
        zip(s_next[~matched], reward[~matched], terminated[~matched], strict=True)
    )[:5]
    return np.array(counts), np.array(list(groups.values()))


@pytest.mark.parametrize("name", ENVS)
@pytest.mark.parametrize("source", TRANSITIONS)
def test_transitions_follow_the_model_in_both_envs(name, source):
    """Per pair, a chi-square test of the outcome counts against P at p > 1e-5: over both sources
    and all envs ~750 stochastic pairs are tested, so by Bonferroni a false alarm anywhere has
    chance < 1% (and the seeds are fixed: a pass is reproducible). Pooled over an env's pairs, the
    summed statistic at p > 1e-4 catches a small bias that every pair shares."""
    ps = pairs(name)
    s_next, reward, terminated = TRANSITIONS[source](name)
    base = setup(name)[0].unwrapped
    draws = s_next.shape[1]
    total, dof = 0.0, 0
    for i, (s, a) in enumerate(ps):
        counts, probs = outcome_counts(
            base.P[s][a], s_next[i], reward[i], terminated[i], match_reward=name != "MaxBias"
        )
        if len(probs) == 1:  # deterministic: every draw was that outcome (asserted above)
            continue
        test = stats.chisquare(counts, probs / probs.sum() * draws)
        assert test.pvalue > 1e-5, (s, a, counts, probs * draws)
        total, dof = total + test.statistic, dof + len(probs) - 1
    if dof:
        assert stats.chi2.sf(total, dof) > 1e-4, (total, dof)
    stochastic = {"FrozenLake-4x4": True, "FrozenLake-8x8": True, "Taxi-rainy": True}
    assert (dof > 0) == stochastic.get(name, False)


@pytest.mark.parametrize("source", TRANSITIONS)
def test_maxbias_rewards_are_gaussian_at_b_and_exact_elsewhere(source):
    """Every valid action of B pays N(−0.1, 1): mean and std within 4 standard errors (σ/√n and
    σ/√(2n)); every other pair pays its model reward exactly (0)."""
    ps = pairs("MaxBias")
    _, reward, _ = TRANSITIONS[source]("MaxBias")
    at_b = ps[:, 0] == STATE_B
    assert at_b.sum() == 10
    rewards = reward[at_b].ravel()
    n = rewards.size
    assert abs(rewards.mean() - (-0.1)) < 4 / np.sqrt(n)
    assert abs(rewards.std() - 1.0) < 4 / np.sqrt(2 * n)
    for per_action in reward[at_b]:  # each action on its own, too
        assert abs(per_action.mean() - (-0.1)) < 4 / np.sqrt(per_action.size)
    assert np.all(reward[~at_b] == 0.0)


def test_an_invalid_maxbias_action_is_minus_inf_and_terminal_not_nan():
    jenv = tabular.from_gym(make("MaxBias"), "MaxBias-v0", None)
    state, _ = jax.jit(jenv.reset)(jax.random.key(0))
    assert not bool(jenv.action_mask(state)[5])
    step = jax.jit(jenv.step)
    new, obs, reward, terminated, truncated = step(state, jnp.int32(5), jax.random.key(1))
    assert float(reward) == -np.inf and bool(terminated) and not bool(truncated)
    assert int(new.s) == TERMINAL and int(obs.argmax()) == TERMINAL


# --------------------------------------------------------------------------------------------------
# 3. Resets


@pytest.mark.parametrize(
    ("name", "start"),
    [("FrozenLake-4x4", 0), ("FrozenLake-8x8", 0), ("CliffWalking", 36), ("MaxBias", STATE_A)],
)
def test_resets_start_where_gymnasium_starts(name, start):
    env, model, jenv = setup(name)
    states, obs = jax.jit(jax.vmap(jenv.reset))(jax.random.split(jax.random.key(0), 1000))
    assert np.all(np.asarray(states.s) == start) and np.all(np.asarray(states.t) == 0)
    np.testing.assert_array_equal(
        np.asarray(states.visited), np.eye(model.mask.shape[0])[[start] * 1000]
    )
    assert obs.dtype == jnp.float32
    # the observation is what `envs.make` gives the learner (one-hot float32)
    learner_obs, _ = Float32Observation(FlattenObservation(make(name))).reset(seed=0)
    np.testing.assert_array_equal(np.asarray(obs[0]), learner_obs)
    assert env.reset(seed=0)[0] == start


def test_taxi_resets_follow_its_initial_distribution_like_gymnasium():
    env, _, jenv = setup("Taxi")
    initial = env.unwrapped.initial_state_distrib
    support = initial > 0
    states, _ = jax.jit(jax.vmap(jenv.reset))(jax.random.split(jax.random.key(0), 30_000))
    jax_counts = np.bincount(np.asarray(states.s), minlength=len(initial))
    env.unwrapped.reset(seed=0)
    gym_counts = np.bincount(
        [env.unwrapped.reset()[0] for _ in range(6000)], minlength=len(initial)
    )
    for counts in (jax_counts, gym_counts):
        assert counts[~support].sum() == 0
        expected = initial[support] * counts.sum()
        assert stats.chisquare(counts[support], expected).pvalue > 1e-4


# --------------------------------------------------------------------------------------------------
# 4. Time limits and auto-reset


def test_time_limits_are_the_given_the_registered_or_the_natural_one():
    def limit(name, steps=None):
        return tabular.from_gym(make(name), name, steps).max_episode_steps

    assert limit("FrozenLake-4x4") == 100 and limit("FrozenLake-8x8") == 100  # FrozenLake-v1's
    assert limit("Taxi") == 200 and limit("CliffWalking", 7) == 7
    assert limit("MaxBias") == 3  # max_episode_length 2, plus one: never reached
    assert (
        tabular.from_gym(make("Taxi", max_episode_steps=50), "Taxi", None).max_episode_steps == 50
    )
    with pytest.raises(ValueError, match="time limit"):
        limit("CliffWalking")
    with pytest.raises(ValueError, match="max_episode_steps"):
        limit("Taxi", 0)


@pytest.mark.parametrize("limit", [7, 13, 100])
def test_time_limit_and_auto_reset_match_gymnasium_step_for_step(limit):
    """CliffWalking (deterministic) under a fixed action sequence that reaches the goal on an
    episode's 13th step: gymnasium's TimeLimit and reset against `functional.auto_reset_step`.
    limit 7: truncated only; 13: terminated and truncated on the same step; 100: terminated only."""
    actions = ([UP] + [RIGHT_] * 11 + [DOWN]) * 3 + [RIGHT_] * 5
    genv = gym.make("CliffWalking-v1", max_episode_steps=limit)
    obs, _ = genv.reset(seed=0)
    expected = []  # (reward, terminated, truncated, final obs, obs to act on next)
    for a in actions:
        final, reward, terminated, truncated, _ = genv.step(a)
        obs = genv.reset()[0] if terminated or truncated else final
        expected.append((reward, terminated, truncated, final, obs))
    reward, terminated, truncated, final, obs = map(np.array, zip(*expected, strict=True))

    jenv = tabular.from_gym(genv, "CliffWalking-v1", limit)

    def body(state, xs):
        action, key = xs
        out = functional.auto_reset_step(jenv, state, action, key)
        return out.state, out

    state, _ = jenv.reset(jax.random.key(0))
    keys = jax.random.split(jax.random.key(1), len(actions))
    _, out = jax.jit(lambda s: jax.lax.scan(body, s, (jnp.int32(actions), keys)))(state)
    np.testing.assert_array_equal(np.asarray(out.reward), reward)
    np.testing.assert_array_equal(np.asarray(out.terminated), terminated)
    np.testing.assert_array_equal(np.asarray(out.truncated), truncated)
    np.testing.assert_array_equal(np.asarray(out.final_obs).argmax(-1), final)
    np.testing.assert_array_equal(np.asarray(out.obs).argmax(-1), obs)
    assert np.asarray(out.final_obs).sum(-1).tolist() == [1.0] * len(actions)  # one-hot

    both = terminated & truncated
    assert {7: (0, 1), 13: (1, 0), 100: (0, 0)}[limit] == (both.any(), (truncated & ~both).any())
    done = terminated | truncated
    assert np.all(obs[done] == 36)  # the next episode's start, and final_obs the state reached:
    assert (final[done] != 36).any()


# --------------------------------------------------------------------------------------------------
# 5. MaxBias's episode metric


def test_maxbias_left_is_one_exactly_for_episodes_that_went_left_as_in_gymnasium():
    """256 envs, 12 steps each, masked uniform actions, auto-reset: at every episode's end
    `maxbias/left` is 1.0 if it went left from A and 0.0 if not; no episode is truncated. A few of
    the runs replayed in gymnasium report the same `info["metrics"]`."""
    jenv = tabular.from_gym(make("MaxBias"), "MaxBias-v0", None)
    n_envs, n_steps = 256, 12

    def body(state, key):
        key_act, key_step = jax.random.split(key)
        action = jax.random.categorical(key_act, jnp.where(jenv.action_mask(state), 0.0, -jnp.inf))
        out = functional.auto_reset_step(jenv, state, action, key_step)
        return out.state, (state.s, action, out.terminated, out.truncated, out.metrics)

    def run(key):
        state, _ = jenv.reset(jax.random.fold_in(key, 0))
        return jax.lax.scan(body, state, jax.random.split(key, n_steps))[1]

    keys = jax.random.split(jax.random.key(0), n_envs)
    s, action, terminated, truncated, metrics = jax.tree.map(
        np.asarray, jax.jit(jax.vmap(run))(keys)
    )
    left = metrics["maxbias/left"]
    assert not truncated.any()
    # an episode is (A, right) or (A, left), (B, any): it went left exactly when it ends in B
    np.testing.assert_array_equal(terminated, (s == STATE_B) | ((s == STATE_A) & (action == RIGHT)))
    went_left = np.zeros(n_envs, bool)
    for t in range(n_steps):
        went_left = np.where(s[:, t] == STATE_A, action[:, t] == LEFT, went_left)
        ended = terminated[:, t]
        np.testing.assert_array_equal(left[ended, t], went_left[ended].astype(np.float32))
    ends = terminated.sum()
    assert 0 < (left[terminated] == 1.0).sum() < ends  # both kinds of episode happened

    for i in range(4):  # gymnasium, same actions
        genv = make("MaxBias")
        genv.reset(seed=i)
        for t in range(n_steps):
            _, _, term, trunc, info = genv.step(int(action[i, t]))
            assert (term, trunc) == (terminated[i, t], False)
            if term:
                assert info["metrics"] == {"maxbias/left": float(left[i, t])}
                genv.reset()


def test_envs_without_flags_report_no_metrics():
    _, _, jenv = setup("FrozenLake-4x4")
    state, _ = jenv.reset(jax.random.key(0))
    assert jenv.episode_metrics(state) == {}
