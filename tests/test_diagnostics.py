"""Over-estimation diagnostics on hand-built episodes and exact tabular truth."""

import gymnasium as gym
import numpy as np
import pytest

from softq_lab.diagnostics import exact, exact_truth, monte_carlo
from softq_lab.diagnostics.episodes import Episode


def episode(q, actions, rewards, terminated=True, final_obs=None):
    return Episode(
        obs=[np.zeros(1)] * len(actions),
        actions=actions,
        rewards=rewards,
        q=[np.asarray(x, float) for x in q],
        terminated=terminated,
        truncated=not terminated,
        final_obs=final_obs,
    )


def no_q(obs):
    raise AssertionError("a terminated episode needs no bootstrap")


def test_returns_to_go_hard_and_soft_by_hand():
    h = np.array([0.3, 0.2, 0.1])  # H(π(·|s_t))
    hard, soft = monte_carlo.returns_to_go(np.ones(3), h, gamma=0.5, tau=2.0, tail=(0.0, 0.0))
    np.testing.assert_allclose(hard, [1.75, 1.5, 1.0])
    # G^τ_t = G_t + τ Σ_{k≥1} γ^k H_{t+k}: the entropy at s_t itself is not part of G^τ_t
    np.testing.assert_allclose(
        soft, [1.75 + 2 * (0.5 * 0.2 + 0.25 * 0.1), 1.5 + 2 * 0.5 * 0.1, 1.0]
    )


def test_monte_carlo_bias_on_a_terminated_greedy_episode():
    # τ = 0: soft = hard. q̂(s_t, a_t) = 3, 2; returns-to-go with γ = 0.9: 1 + 0.9·1 = 1.9, 1.
    ep = episode(q=[[3.0, 0.0], [0.0, 2.0]], actions=[0, 1], rewards=[1.0, 1.0])
    out = monte_carlo.monte_carlo([ep], no_q, gamma=0.9, tau=0.0, operator_value=exact.soft)
    bias = ((3 - 1.9) + (2 - 1)) / 2
    assert out["overestimation/bias_hard"] == pytest.approx(bias)
    assert out["overestimation/bias_soft"] == pytest.approx(bias)
    assert out["overestimation/mae_hard"] == pytest.approx(bias)
    assert out["overestimation/bias_hard_norm"] == pytest.approx(bias / ((1.9 + 1) / 2))
    assert out["overestimation/q_start"] == 3.0
    assert out["overestimation/return_start_hard"] == pytest.approx(1.9)


def test_soft_return_adds_the_entropy_bonus_of_later_states():
    tau, gamma = 1.0, 0.5
    q1 = np.array([0.0, np.log(3.0)])  # π(·|s_1) = (1/4, 3/4)
    ep = episode(q=[[0.0, 0.0], q1], actions=[0, 1], rewards=[0.0, 1.0])
    out = monte_carlo.monte_carlo([ep], no_q, gamma, tau, operator_value=exact.soft)
    h1 = -(0.25 * np.log(0.25) + 0.75 * np.log(0.75))
    g_hard, g_soft = np.array([0.5, 1.0]), np.array([0.5 + tau * gamma * h1, 1.0])
    q_hat = np.array([0.0, np.log(3.0)])
    assert out["overestimation/bias_hard"] == pytest.approx(np.mean(q_hat - g_hard))
    assert out["overestimation/bias_soft"] == pytest.approx(np.mean(q_hat - g_soft))
    assert out["overestimation/return_start_soft"] == pytest.approx(g_soft[0])


def test_the_entropy_bonus_counts_only_the_actions_the_env_allows():
    tau, gamma = 1.0, 0.5
    ep = episode(q=[[0.0, 0.0, 0.0], [0.0, 0.0, 5.0]], actions=[0, 1], rewards=[0.0, 0.0])
    ep.masks = [np.array([1, 1, 1]), np.array([1, 1, 0])]  # at s_1 only two actions are valid
    out = monte_carlo.monte_carlo([ep], no_q, gamma, tau, operator_value=exact.soft)
    assert out["overestimation/return_start_soft"] == pytest.approx(tau * gamma * np.log(2))


def test_a_truncated_return_is_bootstrapped_with_the_learners_value_not_taken_as_truth():
    tau, gamma = 0.5, 0.9
    q_T = np.array([1.0, 2.0])
    ep = episode(q=[[0.0, 0.0]], actions=[0], rewards=[1.0], terminated=False, final_obs=np.ones(1))
    out = monte_carlo.monte_carlo([ep], lambda obs: q_T[None], gamma, tau, exact.soft)
    v_soft = tau * np.log(np.exp(1 / tau) + np.exp(2 / tau))
    pi = np.exp(q_T / tau) / np.exp(q_T / tau).sum()
    assert out["overestimation/return_start_soft"] == pytest.approx(1 + gamma * v_soft)
    assert out["overestimation/return_start_hard"] == pytest.approx(1 + gamma * (pi @ q_T))


def test_a_truncated_tail_uses_only_the_valid_actions_at_the_last_state():
    tau, gamma = 0.5, 0.9
    q_T = np.array([1.0, 2.0, 100.0])  # action 2 is not allowed at s_T
    ep = episode(
        q=[[0.0, 0.0, 0.0]], actions=[0], rewards=[1.0], terminated=False, final_obs=np.ones(1)
    )
    ep.final_mask = np.array([1, 1, 0])
    out = monte_carlo.monte_carlo([ep], lambda obs: q_T[None], gamma, tau, exact.soft)
    v_soft = tau * np.log(np.exp(1 / tau) + np.exp(2 / tau))
    assert out["overestimation/return_start_soft"] == pytest.approx(1 + gamma * v_soft)


def test_norm_is_left_out_when_every_return_is_zero():
    ep = episode(q=[[0.5, 0.0]], actions=[0], rewards=[0.0])
    out = monte_carlo.monte_carlo([ep], no_q, 0.9, 0.0, exact.soft)
    assert "overestimation/bias_hard_norm" not in out and out["overestimation/bias_hard"] == 0.5


def test_states_in_play_exclude_frozenlakes_holes_and_goal():
    mdp = exact.tabular_mdp(gym.make("FrozenLake-v1"))
    in_play = exact_truth.states_in_play(mdp)
    assert not in_play[[5, 7, 11, 12, 15]].any()  # holes and goal of the 4x4 map
    assert in_play[[0, 1, 2, 3, 4, 6, 8, 9, 10, 13, 14]].all()


def test_exact_errors_vanish_for_the_true_tables_and_show_a_known_offset():
    env = gym.make("FrozenLake-v1")
    truth = exact_truth.ExactTruth(
        env, gamma=0.9, tau=0.0, operator="soft", n_step=1, entropy_bonus=False
    )
    q_star = np.where(truth.mdp.mask, truth.qstar.q, 0.0)
    out = truth.errors(q_star)
    assert out["exact/converged"] == 1.0
    assert out["exact/bias_qstar"] == pytest.approx(0.0, abs=1e-9)
    assert out["exact/bias_fixed_point"] == pytest.approx(0.0, abs=1e-9)  # τ = 0: fixed point = Q*
    assert out["exact/bias_policy"] == pytest.approx(
        0.0, abs=1e-6
    )  # greedy policy of Q* is optimal
    assert "exact/bias_qstar_visited" not in out  # nothing visited yet
    truth.visit(np.eye(16)[0], 1)
    out = truth.errors(q_star + 0.25)
    assert out["exact/bias_qstar"] == pytest.approx(0.25)
    assert out["exact/mae_qstar_visited"] == pytest.approx(0.25)


def test_a_missing_soft_fixed_point_is_reported_not_logged_as_a_number():
    env = gym.make("FrozenLake-v1")
    truth = exact_truth.ExactTruth(
        env, gamma=1.0, tau=0.1, operator="soft", n_step=1, entropy_bonus=False
    )
    out = truth.errors(np.zeros((16, 4)))
    assert out["exact/converged"] == 0.0
    assert not any("fixed_point" in k for k in out)
    assert "exact/bias_qstar" in out  # hard Q* exists at γ = 1
