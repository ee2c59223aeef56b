"""Backup operators: exact hard max at τ = 0, limits, stability, hand computations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softq_lab.core import operators

Q = jnp.array([[1.0, 2.0, 3.0], [-5.0, 0.5, 0.5]])
ALL = ["soft", "mellowmax", "boltzmann", "hard"]


@pytest.mark.parametrize("name", ALL)
def test_tau_zero_is_exactly_the_hard_max(name):
    q = jax.random.normal(jax.random.key(0), (64, 7)) * 100
    v = operators.get(name)(q, jnp.float32(0.0))
    np.testing.assert_array_equal(v, jnp.max(q, axis=-1))


@pytest.mark.parametrize("name", ["soft", "mellowmax", "boltzmann"])
def test_small_tau_approaches_the_hard_max(name):
    q = jax.random.normal(jax.random.key(1), (64, 5))
    for tau, tol in [(1e-2, 5e-2), (1e-4, 5e-4), (1e-8, 1e-6)]:
        np.testing.assert_allclose(operators.get(name)(q, tau), q.max(-1), atol=tol)


def test_soft_matches_hand_computation():
    # τ·log(e^{1/τ} + e^{2/τ} + e^{3/τ}) at τ = 1: log(e + e² + e³) = 3.40760596
    np.testing.assert_allclose(operators.soft(Q[0], 1.0), 3.40760596, rtol=1e-6)
    # τ = 0.5: 0.5·log(e² + e⁴ + e⁶) = 3.06346...
    np.testing.assert_allclose(
        operators.soft(Q[0], 0.5), 0.5 * np.log(np.exp([2, 4, 6]).sum()), rtol=1e-6
    )


def test_mellowmax_is_soft_minus_tau_log_num_actions():
    for tau in [0.1, 1.0, 3.0]:
        expected = tau * np.log(np.mean(np.exp(np.array([1.0, 2.0, 3.0]) / tau)))
        np.testing.assert_allclose(operators.mellowmax(Q[0], tau), expected, rtol=1e-6)


def test_boltzmann_is_the_softmax_weighted_mean():
    p = np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum()
    np.testing.assert_allclose(operators.boltzmann(Q[0], 1.0), (p * [1, 2, 3]).sum(), rtol=1e-6)


@pytest.mark.parametrize("tau", [1e-8, 1e-3, 1.0, 1e3])
@pytest.mark.parametrize("scale", [1.0, 1e3, 1e6])
def test_operators_stay_finite_for_huge_q_and_tiny_tau(tau, scale):
    q = jnp.array([[-1.0, 0.0, 1.0], [1.0, 1.0, 1.0]]) * scale
    for name in ALL:
        v = operators.get(name)(q, tau)
        assert np.all(np.isfinite(v)), (name, tau, scale, v)
    # and the soft value is bracketed: max ≤ soft ≤ max + τ·log|A|
    v = operators.soft(q, tau)
    m = q.max(-1)
    assert np.all(v >= m) and np.all(v <= m + tau * np.log(3) + 1e-6 * scale)


def test_soft_bounds_and_ordering_of_operators():
    q = jax.random.normal(jax.random.key(2), (256, 6)) * 3
    tau = 0.7
    m = q.max(-1)
    soft, mm, bz = (operators.get(n)(q, tau) for n in ["soft", "mellowmax", "boltzmann"])
    assert np.all(soft >= m - 1e-5) and np.all(soft <= m + tau * np.log(6) + 1e-5)
    assert np.all(mm <= m + 1e-5) and np.all(mm >= m - tau * np.log(6) - 1e-5)
    assert np.all(bz <= m + 1e-5)


def test_soft_equals_expected_q_plus_tau_entropy():
    q = jax.random.normal(jax.random.key(3), (32, 4))
    pi = operators.boltzmann_policy(q, 0.5)
    expected = (pi * q).sum(-1) + 0.5 * operators.soft_entropy(q, 0.5)
    np.testing.assert_allclose(operators.soft(q, 0.5), expected, rtol=1e-5, atol=1e-6)


def test_tau_is_traced_so_a_new_tau_does_not_recompile():
    traces = []

    @jax.jit
    def f(q, tau):
        traces.append(1)
        return operators.soft(q, tau)

    for tau in [0.0, 0.1, 1.0, 5.0]:
        f(Q, jnp.float32(tau)).block_until_ready()
    assert len(traces) == 1


def test_gradient_is_finite_at_tau_zero():
    g = jax.grad(lambda q: operators.soft(q, 0.0).sum())(Q)
    assert np.all(np.isfinite(g))
    np.testing.assert_array_equal(g.sum(-1), [1.0, 1.0])


def test_double_value_reduces_to_the_operator_when_both_networks_agree():
    q = jax.random.normal(jax.random.key(4), (16, 5))
    for name in ["soft", "boltzmann"]:
        for tau in [0.0, 0.3, 2.0]:
            np.testing.assert_allclose(
                operators.double_value(q, q, tau, name),
                operators.get(name)(q, tau),
                rtol=1e-5,
                atol=1e-6,
            )


def test_double_value_at_tau_zero_evaluates_the_online_argmax_with_the_target():
    q_targ = jnp.array([[10.0, 0.0, 5.0]])
    q_online = jnp.array([[0.0, 1.0, 0.5]])  # online prefers action 1
    np.testing.assert_array_equal(operators.double_value(q_targ, q_online, 0.0, "soft"), [0.0])


def test_unknown_operator_is_a_clear_error():
    with pytest.raises(ValueError, match="operator='max'"):
        operators.get("max")


MASK = jnp.array([[True, True, False], [True, False, True]])


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("tau", [0.0, 0.1, 1.0])
def test_a_masked_action_is_exactly_absent(name, tau):
    """op(q, τ, mask) equals op over the valid columns alone, whatever q the invalid ones hold."""
    q = Q.at[0, 2].set(1e6).at[1, 1].set(-1e6)  # untrained invalid columns, deliberately extreme
    masked = operators.get(name)(q, tau, MASK)
    alone = [operators.get(name)(q[0, :2], tau), operators.get(name)(q[1, ::2], tau)]
    np.testing.assert_allclose(masked, alone, rtol=1e-6)


def test_mellowmax_averages_over_the_valid_actions_only():
    q = jnp.array([0.0, 0.0, 123.0])
    v = operators.mellowmax(q, 1.0, jnp.array([True, True, False]))
    np.testing.assert_allclose(v, 0.0, atol=1e-6)  # log mean(e^0, e^0), not log((2 + 0)/3)


@pytest.mark.parametrize("name", ALL)
def test_a_state_without_valid_actions_keeps_a_finite_value(name):
    """A terminal state's mask may be all False; its value is multiplied by 0 and must stay finite."""
    v = operators.get(name)(Q, 0.5, jnp.zeros_like(MASK))
    np.testing.assert_allclose(v, operators.get(name)(Q, 0.5), rtol=1e-6)


@pytest.mark.parametrize("operator", ["soft", "boltzmann"])
@pytest.mark.parametrize("tau", [0.0, 0.5])
def test_double_value_ranges_over_the_valid_actions(operator, tau):
    q_select = jnp.array([0.0, 5.0, 1.0])  # the invalid action 1 would win the choice
    q_targ = jnp.array([2.0, 100.0, 4.0])
    mask = jnp.array([True, False, True])
    v = operators.double_value(q_targ, q_select, tau, operator, mask)
    alone = operators.double_value(q_targ[::2], q_select[::2], tau, operator)
    np.testing.assert_allclose(v, alone, rtol=1e-6)


def test_double_value_at_tau_zero_breaks_ties_at_random_not_toward_the_lowest_index():
    """With tied online values (MaxBias's all-zero start), the τ = 0 double target evaluates a
    maximiser drawn uniformly (with a key, as Double Q-learning's argmax does), or their mean."""
    q_select = jnp.array([0.0, 0.0, 0.0, -1.0])
    q_targ = jnp.array([1.0, 2.0, 3.0, 100.0])
    np.testing.assert_allclose(operators.double_value(q_targ, q_select, 0.0, "soft"), 2.0)
    keys = jax.random.split(jax.random.key(0), 3000)
    draws = jax.vmap(lambda k: operators.double_value(q_targ, q_select, 0.0, "soft", key=k))(keys)
    values, counts = np.unique(np.asarray(draws), return_counts=True)
    assert values.tolist() == [1.0, 2.0, 3.0]  # never the non-maximiser, each maximiser alike
    assert counts.min() > 900


def test_the_greedy_policy_is_uniform_over_ties_or_one_hot_on_a_random_maximiser():
    q = jnp.array([[0.0, 0.0, -1.0, 0.0]])
    np.testing.assert_allclose(operators.boltzmann_policy(q, 0.0), [[1 / 3, 1 / 3, 0, 1 / 3]])
    picks = {int(jnp.argmax(operators.boltzmann_policy(q, 0.0, key=jax.random.key(i))))
             for i in range(40)}  # fmt: skip
    assert picks == {0, 1, 3}
