"""The maximization-bias MDP (Sutton & Barto, Example 6.7) as a gymnasium env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import softq_lab.envs  # noqa: F401  (registers MaxBias-v0)
from softq_lab.diagnostics import exact
from softq_lab.envs.maxbias import STATE_A, STATE_B, TERMINAL, MaxBiasEnv


def b_rewards(env: MaxBiasEnv, n: int, seed: int) -> np.ndarray:
    """n rewards from B, one per episode (left, then action 0), after reset(seed=seed)."""
    env.reset(seed=seed)
    out = np.empty(n)
    for i in range(n):
        if i:
            env.reset()
        env.step(0)
        out[i] = env.step(0)[1]
    return out


def test_registered_id_makes_the_env_with_kwargs() -> None:
    env = gym.make("MaxBias-v0", n_b_actions=10)
    assert isinstance(env.unwrapped, MaxBiasEnv)
    assert env.observation_space == gym.spaces.Discrete(3)
    assert env.action_space == gym.spaces.Discrete(10)
    assert gym.make("MaxBias-v0", n_b_actions=1).action_space == gym.spaces.Discrete(2)


def test_left_goes_to_b_with_zero_reward_then_any_action_terminates() -> None:
    env = gym.make("MaxBias-v0", n_b_actions=10)
    obs, info = env.reset(seed=0)
    assert obs == STATE_A
    np.testing.assert_array_equal(info["action_mask"], [1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    assert info["action_mask"].dtype == np.int8

    obs, reward, terminated, truncated, info = env.step(0)
    assert (obs, reward, terminated, truncated) == (STATE_B, 0.0, False, False)
    np.testing.assert_array_equal(info["action_mask"], np.ones(10))
    assert "metrics" not in info  # only at the episode's end

    obs, reward, terminated, truncated, info = env.step(7)
    assert (obs, terminated, truncated) == (TERMINAL, True, False)
    assert isinstance(reward, float) and reward != 0.0
    assert info["metrics"] == {"maxbias/left": 1.0}
    np.testing.assert_array_equal(info["action_mask"], np.ones(10))


def test_right_terminates_at_once_with_zero_reward() -> None:
    env = gym.make("MaxBias-v0", n_b_actions=10)
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(1)
    assert (obs, reward, terminated, truncated) == (TERMINAL, 0.0, True, False)
    assert info["metrics"] == {"maxbias/left": 0.0}


def test_invalid_actions_raise_value_error() -> None:
    env = gym.make("MaxBias-v0", n_b_actions=10)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action 5 is not valid in state A"):
        env.step(5)
    with pytest.raises(ValueError, match="outside the action space"):
        env.step(10)
    one = gym.make("MaxBias-v0", n_b_actions=1)
    one.reset(seed=0)
    _, _, _, _, info = one.step(0)
    np.testing.assert_array_equal(info["action_mask"], [1, 0])  # B has a single action
    with pytest.raises(ValueError, match="not valid in state B"):
        one.step(1)
    with pytest.raises(ValueError, match="n_b_actions"):
        MaxBiasEnv(n_b_actions=0)


def test_b_reward_is_normal_with_the_configured_mean_and_std() -> None:
    n = 20_000
    for mean, std in ((-0.1, 1.0), (2.0, 0.5)):
        r = b_rewards(MaxBiasEnv(n_b_actions=10, mean=mean, std=std), n, seed=1)
        # 6 standard errors: mean ± 6·std/√n, std ± 6·std/√(2n); fails with prob. < 1e-8
        assert abs(r.mean() - mean) < 6 * std / np.sqrt(n)
        assert abs(r.std() - std) < 6 * std / np.sqrt(2 * n)
        skew = np.mean(((r - r.mean()) / r.std()) ** 3)
        assert abs(skew) < 6 * np.sqrt(6 / n)  # symmetric, as a normal is


def test_same_seed_same_rewards_different_seed_different_rewards() -> None:
    a = b_rewards(MaxBiasEnv(), 50, seed=123)
    b = b_rewards(MaxBiasEnv(), 50, seed=123)
    c = b_rewards(MaxBiasEnv(), 50, seed=124)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_gymnasium_env_checker_passes() -> None:
    # check_env samples actions without the mask, so use n_b_actions=2 (every action valid in A)
    check_env(gym.make("MaxBias-v0", n_b_actions=2).unwrapped)


def test_model_p_is_consistent_with_invalid_actions_worth_minus_infinity() -> None:
    env = MaxBiasEnv(n_b_actions=4, mean=-0.1)
    for s in range(3):
        for a in range(4):
            assert sum(prob for prob, *_ in env.P[s][a]) == pytest.approx(1.0)
    assert env.P[STATE_A][0] == [(1.0, STATE_B, 0.0, False)]
    assert env.P[STATE_A][1] == [(1.0, TERMINAL, 0.0, True)]
    assert env.P[STATE_A][2] == [(1.0, TERMINAL, -np.inf, True)]
    assert env.P[STATE_B][3] == [(1.0, TERMINAL, -0.1, True)]
    np.testing.assert_array_equal(env.valid_actions[STATE_A], [True, True, False, False])


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_tabular_mdp_gives_the_known_q_star(gamma: float) -> None:
    n_b, mean, tau = 10, -0.1, 0.2
    mdp = exact.tabular_mdp(gym.make("MaxBias-v0", n_b_actions=n_b, mean=mean))
    np.testing.assert_array_equal(mdp.mask[STATE_A], [1, 1] + [0] * 8)

    hard = exact.fixed_point(mdp, gamma, 0.0, "hard")
    assert hard.converged
    # Q*(A, left) = γ·max_b Q*(B, b) = γ·(−0.1);  Q*(A, right) = 0;  Q*(B, ·) = −0.1
    np.testing.assert_allclose(hard.q[STATE_A, :2], [gamma * mean, 0.0], atol=1e-12)
    np.testing.assert_array_equal(hard.q[STATE_A, 2:], -np.inf)  # invalid: excluded
    np.testing.assert_allclose(hard.q[STATE_B], mean, atol=1e-12)
    np.testing.assert_array_equal(hard.q[TERMINAL], 0.0)

    soft = exact.fixed_point(mdp, gamma, tau, "soft")
    # soft V(B) = −0.1 + τ·log 10 > 0: the soft value prefers left, Q_τ(A, left) = γ·V(B)
    assert soft.q[STATE_A, 0] == pytest.approx(gamma * (mean + tau * np.log(n_b)), abs=1e-12)
    assert soft.q[STATE_A, 1] == 0.0
    mellow = exact.fixed_point(mdp, gamma, tau, "mellowmax")
    # mellowmax over 2 valid actions at A, never over the 8 invalid ones
    v_a = tau * np.log((np.exp(gamma * mean / tau) + 1.0) / 2)
    assert exact.mellowmax(mellow.q[STATE_A], tau, mdp.mask[STATE_A]) == pytest.approx(v_a)
    pi = exact.boltzmann_policy(soft.q, tau, mdp.mask)
    assert pi[STATE_A, 2:].sum() == 0.0


def test_two_step_target_on_maxbias_sees_entropy_only_with_the_bonus() -> None:
    gamma, tau, n_b, mean = 1.0, 0.2, 10, -0.1
    mdp = exact.tabular_mdp(gym.make("MaxBias-v0", n_b_actions=n_b, mean=mean))
    plain = exact.fixed_point(mdp, gamma, tau, "soft", n_step=2)
    bonus = exact.fixed_point(mdp, gamma, tau, "soft", n_step=2, entropy_bonus=True)
    # A, left: the 2-step window ends at termination, so no soft bootstrap is ever used:
    # without the bonus the target is 0 + γ·(−0.1) — the hard value, −0.1 — and with the bonus it
    # gains γ·τ·H(uniform over 10) = 0.2·log 10, giving the soft Q*_τ(A, left) = 0.3605
    assert plain.q[STATE_A, 0] == pytest.approx(gamma * mean, abs=1e-12)
    assert bonus.q[STATE_A, 0] == pytest.approx(gamma * (mean + tau * np.log(n_b)), abs=1e-12)
