"""The behaviour policy draws from π = ε·U(valid) + (1 − ε)·softmax(q/τ) (greedy with random ties at
τ = 0), and never an action the mask forbids."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softq_lab.core.policy import inverse_cdf, select_action

DRAWS = 40_000


def frequencies(q, epsilon, tau, mask=None):
    keys = jax.random.split(jax.random.key(0), DRAWS)
    q = jnp.asarray(q, jnp.float32)[None]
    m = None if mask is None else jnp.asarray(mask)[None]
    draw = jax.jit(jax.vmap(lambda k: select_action(k, q, epsilon, tau, m)[0]))
    return np.bincount(np.asarray(draw(keys)), minlength=q.shape[-1]) / DRAWS


def close(freq, probs):
    se = np.sqrt(np.asarray(probs) * (1 - np.asarray(probs)) / DRAWS)
    np.testing.assert_array_less(np.abs(freq - probs), 5 * se + 1e-12)


def test_epsilon_one_is_uniform_over_the_valid_actions():
    close(frequencies([5.0, 1.0, 0.0, 2.0], 1.0, 0.0, mask=[1, 0, 1, 1]), [1 / 3, 0, 1 / 3, 1 / 3])


def test_greedy_breaks_ties_at_random_and_ignores_masked_maxima():
    q = [1.0, 3.0, 3.0, 9.0]  # the 9 is masked out: the tie 3, 3 is the max
    close(frequencies(q, 0.0, 0.0, mask=[1, 1, 1, 0]), [0, 0.5, 0.5, 0])


@pytest.mark.parametrize("tau", [0.5, 2.0])
def test_boltzmann_draws_softmax_q_over_tau_mixed_with_epsilon(tau):
    q, eps = np.array([1.0, 0.0, -1.0]), 0.2
    softmax = np.exp(q / tau) / np.exp(q / tau).sum()
    close(frequencies(q, eps, tau), eps / 3 + (1 - eps) * softmax)


def test_inverse_cdf_never_returns_an_index_of_probability_zero():
    probs = jnp.array([0.0, 0.5, 0.0, 0.5, 0.0])
    u = jnp.array([0.0, 0.25, 0.4999, 0.5, 0.9999999])
    np.testing.assert_array_equal(inverse_cdf(jnp.broadcast_to(probs, (5, 5)), u), [1, 1, 1, 3, 3])


def test_different_keys_give_different_actions_and_the_same_key_the_same():
    q = jnp.zeros((64, 4))
    a, b, c = (select_action(jax.random.key(k), q, 1.0, 0.0) for k in (1, 1, 2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
