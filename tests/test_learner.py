"""The learner: targets by hand, one update lowers the loss, traced τ, vmappable over runs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softq_lab.core import networks
from softq_lab.core.learner import Hyper, LearnerSpec, make_learner
from softq_lab.core.replay import Window

TABLE = networks.NetworkSpec(type=2, hidden_sizes=(), use_bias=False, init="zeros")


def table_params(q_table: np.ndarray):
    """Params of the tabular network whose q(one_hot(s), ·) = q_table[s]."""
    return {"params": {"MLP_0": {"Dense_0": {"kernel": jnp.asarray(q_table, jnp.float32)}}}}


def one_hot(s, n=3):
    return jax.nn.one_hot(jnp.asarray(s), n)


# q(s, ·) for 3 states and 2 actions; the target network holds the same table
Q_TABLE = np.array([[1.0, 2.0], [0.0, 4.0], [3.0, 3.0]])


def fixed_window():
    """Two 2-step windows: (s0 -a0-> r=1 -> s1 -a1-> r=2 -> s2) and one that terminates at once."""
    return Window(
        obs=jnp.stack([one_hot([0, 1]), one_hot([1, 2])]),
        action=jnp.array([[0, 1], [1, 0]]),
        reward=jnp.array([[1.0, 2.0], [5.0, 0.0]]),
        mask=jnp.array([[1.0, 1.0], [1.0, 0.0]]),
        terminal=jnp.array([False, True]),
        next_obs=one_hot([2, 2]),
        next_mask=jnp.ones((2, 2), bool),
        action_mask=jnp.ones((2, 2, 2), bool),
    )


def one_step_window(reward: float, next_state: int, next_mask=(True, True)) -> Window:
    """One 1-step window: s0 -a0-> reward -> next_state (not terminal), next_mask valid there."""
    return Window(
        obs=one_hot([[0]]),
        action=jnp.array([[0]]),
        reward=jnp.array([[reward]]),
        mask=jnp.array([[1.0]]),
        terminal=jnp.array([False]),
        next_obs=one_hot([next_state]),
        next_mask=jnp.array([next_mask], bool),
        action_mask=jnp.ones((1, 1, 2), bool),
    )


def test_td_target_equals_a_hand_computation():
    spec = LearnerSpec(obs_shape=(3,), n_actions=2, network=TABLE, n_step=2)
    learner = make_learner(spec)
    params = table_params(Q_TABLE)
    tau, gamma = 0.5, 0.9
    q_targ, q_targ_hard = learner.targets(
        params, params, fixed_window(), Hyper.make(tau, gamma, 1e-3)
    )
    v_soft = tau * np.log(np.exp(3 / tau) + np.exp(3 / tau))  # = 3 + τ·log 2 at s2
    np.testing.assert_allclose(q_targ, [1 + gamma * 2 + gamma**2 * v_soft, 5.0], rtol=1e-6)
    np.testing.assert_allclose(q_targ_hard, [1 + gamma * 2 + gamma**2 * 3.0, 5.0], rtol=1e-6)


def test_entropy_bonus_adds_the_intermediate_states_bonus():
    spec = LearnerSpec(obs_shape=(3,), n_actions=2, network=TABLE, n_step=2, entropy_bonus=True)
    learner = make_learner(spec)
    params = table_params(Q_TABLE)
    tau, gamma = 0.5, 0.9
    q_targ, _ = learner.targets(params, params, fixed_window(), Hyper.make(tau, gamma, 1e-3))
    # window 0, step k=1: state s1, action 1; π(1|s1) = softmax([0, 4]/0.5)[1]
    logp = 4 / tau - np.log(np.exp(0) + np.exp(4 / tau))
    v_soft = 3 + tau * np.log(2)
    expected0 = 1 + gamma * 2 + gamma * (-tau * logp) + gamma**2 * v_soft
    np.testing.assert_allclose(q_targ, [expected0, 5.0], rtol=1e-6)


def test_double_q_target_lets_the_online_network_choose():
    spec = LearnerSpec(obs_shape=(3,), n_actions=2, network=TABLE, n_step=1, double="target")
    learner = make_learner(spec)
    online = table_params(np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]]))  # chooses a0 at s2
    target = table_params(np.array([[0.0, 0.0], [0.0, 0.0], [2.0, 7.0]]))
    window = one_step_window(reward=1.0, next_state=2)
    _, q_hard = learner.targets(online, target, window, Hyper.make(0.0, 0.5, 1e-3))
    np.testing.assert_allclose(q_hard, [1 + 0.5 * 2.0])  # not 1 + 0.5·7 (the target's own max)


@pytest.mark.parametrize("loss", ["huber", "mse"])
def test_one_update_lowers_the_loss_on_a_fixed_batch(loss):
    spec = LearnerSpec(obs_shape=(3,), n_actions=2, n_step=2, loss=loss, optimizer="sgd")
    learner = make_learner(spec)
    state = learner.init(jax.random.key(0))
    hyper = Hyper.make(tau=0.1, gamma=0.9, lr=0.05, polyak=1e-9)
    before = learner.update(state, fixed_window(), hyper)[1]["loss"]
    state, _ = learner.update(state, fixed_window(), hyper)
    after = learner.update(state, fixed_window(), hyper)[1]["loss"]
    assert after < before


def test_metrics_report_the_soft_minus_hard_gap_and_q_spread():
    spec = LearnerSpec(obs_shape=(3,), n_actions=2, network=TABLE, n_step=2)
    learner = make_learner(spec)
    state = learner.init(jax.random.key(0))
    params = table_params(Q_TABLE)
    state = state._replace(params=params, target_params=params)
    _, m = learner.update(state, fixed_window(), Hyper.make(0.5, 0.9, 0.0))
    gap = 0.9**2 * 0.5 * np.log(2) / 2  # only window 0 bootstraps; mean over the batch of 2
    np.testing.assert_allclose(m["soft_hard_gap"], gap, rtol=1e-5)
    np.testing.assert_allclose(m["q_spread"], ((2 - 1) + (4 - 0)) / 2)


def test_type1_and_type2_agree_for_an_equivalent_function():
    """A linear type-1 q(s,a) = u·s + v_a + c equals the type-2 table W[a] = u, b[a] = v_a + c."""
    spec1 = networks.NetworkSpec(type=1, hidden_sizes=())
    spec2 = networks.NetworkSpec(type=2, hidden_sizes=())
    net1, net2 = networks.make(spec1, 3), networks.make(spec2, 3)
    obs = jax.random.normal(jax.random.key(0), (5, 4))
    p1 = net1.init(jax.random.key(1), obs)
    kernel, bias = p1["params"]["mlp"]["Dense_0"]["kernel"], p1["params"]["mlp"]["Dense_0"]["bias"]
    u, v = kernel[:4, 0], kernel[4:, 0]
    p2 = {
        "params": {"MLP_0": {"Dense_0": {"kernel": jnp.tile(u[:, None], (1, 3)), "bias": v + bias}}}
    }
    np.testing.assert_allclose(net1.apply(p1, obs), net2.apply(p2, obs), rtol=1e-5, atol=1e-6)


def test_type1_all_actions_view_evaluates_q_sa_at_every_action():
    net = networks.make(networks.NetworkSpec(type=1, hidden_sizes=(16,)), 4)
    obs = jax.random.normal(jax.random.key(0), (6, 3))
    params = net.init(jax.random.key(1), obs)
    q_all = net.apply(params, obs)
    for a in range(4):
        q_a = net.apply(params, obs, jnp.full(6, a), method="q_sa")
        np.testing.assert_allclose(q_all[:, a], q_a, rtol=1e-6)


def test_update_is_jitted_once_for_any_tau_gamma_and_lr():
    spec = LearnerSpec(obs_shape=(3,), n_actions=2, n_step=2)
    learner = make_learner(spec)
    update = jax.jit(learner.update)
    state = learner.init(jax.random.key(0))
    for tau, gamma, lr in [(0.0, 0.9, 1e-3), (0.1, 0.99, 1e-4), (2.0, 0.5, 1.0)]:
        state, _ = update(state, fixed_window(), Hyper.make(tau, gamma, lr))
    assert update._cache_size() == 1


def test_update_vmaps_over_a_batch_of_runs_with_different_tau():
    spec = LearnerSpec(obs_shape=(3,), n_actions=2, n_step=2)
    learner = make_learner(spec)
    states = jax.vmap(learner.init)(jax.random.split(jax.random.key(0), 3))
    taus = jnp.array([0.0, 0.1, 1.0])
    hyper = Hyper(taus, jnp.full(3, 0.9), jnp.full(3, 1e-3), jnp.full(3, 0.005), jnp.zeros(3, int))
    _, metrics = jax.jit(jax.vmap(learner.update, in_axes=(0, None, 0)))(
        states, fixed_window(), hyper
    )
    assert metrics["loss"].shape == (3,)
    assert metrics["soft_hard_gap"][0] == 0.0 and metrics["soft_hard_gap"][2] > 0.0


def test_hard_target_copy_every_period_updates():
    spec = LearnerSpec(obs_shape=(3,), n_actions=2, n_step=2, optimizer="sgd")
    learner = make_learner(spec)
    state = learner.init(jax.random.key(0))
    hyper = Hyper.make(0.1, 0.9, 0.1, target_period=3)
    same = []
    for _ in range(6):
        state, _ = learner.update(state, fixed_window(), hyper)
        leaves = zip(
            jax.tree.leaves(state.params), jax.tree.leaves(state.target_params), strict=True
        )
        same.append(all(bool(jnp.all(a == b)) for a, b in leaves))
    assert same == [False, False, True, False, False, True]


@pytest.mark.parametrize("double", ["none", "target", "twin"])
@pytest.mark.parametrize("operator", ["soft", "boltzmann", "mellowmax"])
def test_bootstrap_ranges_over_the_next_states_valid_actions_only(double, operator):
    """MaxBias with one action at B: the never-trained invalid column must not enter the target."""
    if double != "none" and operator == "mellowmax":
        pytest.skip("double Q-learning supports soft and boltzmann")
    spec = LearnerSpec(
        obs_shape=(3,), n_actions=2, network=TABLE, operator=operator, double=double
    )
    learner = make_learner(spec)
    params = table_params(np.array([[0.0, 0.0], [-0.1, 0.0], [0.0, 0.0]]))  # s1: a1 invalid, q = 0
    window = one_step_window(reward=0.0, next_state=1, next_mask=[True, False])
    q_targ, q_hard = learner.targets(params, params, window, Hyper.make(0.5, 1.0, 1e-3))
    np.testing.assert_allclose(q_hard, [-0.1], rtol=1e-6)  # not max(−0.1, 0) = 0
    np.testing.assert_allclose(q_targ, [-0.1], rtol=1e-6)  # one valid action: every op gives its q


def test_entropy_bonus_policy_ranges_over_the_valid_actions():
    spec = LearnerSpec(obs_shape=(3,), n_actions=2, network=TABLE, n_step=2, entropy_bonus=True)
    learner = make_learner(spec)
    params = table_params(Q_TABLE)
    window = fixed_window()._replace(action_mask=jnp.array([[[1, 1], [0, 1]], [[1, 1], [1, 1]]], bool))
    tau, gamma = 0.5, 0.9
    q_targ, _ = learner.targets(params, params, window, Hyper.make(tau, gamma, 1e-3))
    # at s1 only action 1 is valid: π(1|s1) = 1, so the bonus of step k = 1 is 0
    expected0 = 1 + gamma * 2 + gamma**2 * (3 + tau * np.log(2))
    np.testing.assert_allclose(q_targ, [expected0, 5.0], rtol=1e-6)
