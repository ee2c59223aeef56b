"""A user's own flax module as the q-network (`network=custom network.target=pkg.module:make_q`):
the same factory, learner and drivers as the built-in networks, and a start-up check of its shapes."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softq_lab.core import networks
from softq_lab.core.learner import Hyper, LearnerSpec, make_learner
from softq_lab.core.replay import Window
from softq_lab.run.config import ConfigError, check_network

from helpers import FAST, softq_train

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FAST_CUSTOM = [o for o in FAST if not o.startswith("network.")]  # no hidden_sizes: not an MLP
DUELING = networks.NetworkSpec(type=2, target="my_networks:make_q", kwargs=(("hidden_sizes", (8,)),))
BILINEAR = networks.NetworkSpec(type=1, target="my_networks:make_q_sa", kwargs=(("features", 8),))


@pytest.fixture
def examples_importable(monkeypatch):
    """`examples/` on this process's path and on its subprocesses' (PYTHONPATH), as the README
    example runs it."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setenv("PYTHONPATH", str(EXAMPLES))


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """Write `tmp_path/<name>.py` with `source` and make it importable."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name, source):
        (tmp_path / f"{name}.py").write_text(source)
        return name

    return write


def test_a_type2_module_is_the_network_itself(examples_importable):
    net = networks.make(DUELING, 3)
    obs = jax.random.normal(jax.random.key(0), (5, 4))
    params = net.init(jax.random.key(1), obs)
    assert type(net).__name__ == "DuelingQ" and net.n_actions == 3  # given n_actions, as it takes it
    assert net.apply(params, obs).shape == (5, 3)
    assert set(params["params"]) == {"Dense_0", "Dense_1", "Dense_2"}  # its own tree, unwrapped


def test_a_type1_module_is_evaluated_at_every_action_by_the_all_actions_view(examples_importable):
    net = networks.make(BILINEAR, 4)
    obs = jax.random.normal(jax.random.key(0), (6, 3))
    params = net.init(jax.random.key(1), obs)
    q_all = net.apply(params, obs)
    assert q_all.shape == (6, 4)
    user = net.q_sa  # the user's module, unbound: apply it with its own part of the parameters
    for a in range(4):
        one_hot = jax.nn.one_hot(jnp.full(6, a), 4)
        q_a = user.apply({"params": params["params"]["q_sa"]}, obs, one_hot)
        np.testing.assert_allclose(q_all[:, a], q_a, rtol=1e-6)


def window(batch=4, n=2, d=3, n_actions=2):
    """A batch of n-step windows of random observations, action 0 everywhere, reward 1."""
    obs = jax.random.normal(jax.random.key(2), (batch, n, d))
    return Window(
        obs=obs, action=jnp.zeros((batch, n), jnp.int32), reward=jnp.ones((batch, n)),
        mask=jnp.ones((batch, n)), terminal=jnp.zeros(batch, bool), next_obs=obs[:, -1],
        action_mask=jnp.ones((batch, n, n_actions), bool), next_mask=jnp.ones((batch, n_actions), bool),
    )  # fmt: skip


@pytest.mark.parametrize("network", [DUELING, BILINEAR], ids=["type2", "type1"])
def test_the_learner_trains_a_custom_network_vmapped_over_runs(examples_importable, network):
    """What the device driver does: one update of a batch of runs, each with its own τ."""
    learner = make_learner(LearnerSpec(obs_shape=(3,), n_actions=2, network=network, n_step=2))
    states = jax.vmap(learner.init)(jax.random.split(jax.random.key(0), 3))
    hyper = jax.vmap(lambda tau: Hyper.make(tau, 0.9, 1e-2))(jnp.array([0.0, 0.1, 1.0]))
    new, metrics = jax.jit(jax.vmap(learner.update, (0, None, 0)))(states, window(), hyper)
    assert metrics["loss"].shape == (3,) and np.isfinite(metrics["loss"]).all()
    moved = jax.tree.map(lambda a, b: np.abs(np.asarray(a - b)).max(axis=tuple(range(1, a.ndim))),
                         new.params, states.params)  # fmt: skip
    assert all((m > 0).all() for m in jax.tree.leaves(moved))  # every run's parameters changed


WIDE = """
import flax.linen as nn

def make_wide(n_actions):
    return nn.Dense(n_actions + 1)
"""


def test_a_wrong_output_shape_is_one_line_naming_the_shapes(user_module):
    spec = networks.NetworkSpec(type=2, target=f"{user_module('wide_q', WIDE)}:make_wide")
    with pytest.raises(ConfigError) as err:
        check_network(spec, (4,), 2)
    assert str(err.value) == (
        "network.target='wide_q:make_wide': q(s, ·) must have shape [batch, n_actions] = [1, 2], "
        "got [1, 3]"
    )


def test_a_type1_module_must_give_one_value_per_pair(examples_importable):
    spec = networks.NetworkSpec(type=1, target="my_networks:make_q")  # a type-2 module
    with pytest.raises(ConfigError) as err:
        check_network(spec, (4,), 3)
    assert str(err.value).startswith(
        "network.target='my_networks:make_q': q(s, a) = module(obs, one-hot action) "
        "(network.type=1) fails on inputs of shape [1, 4] and [1, 3]: TypeError: "
    )


def test_a_factory_that_returns_no_flax_module_is_one_line(user_module):
    name = user_module("not_flax", "def make_q(n_actions):\n    return lambda obs: obs\n")
    with pytest.raises(ConfigError, match=r"must return a flax nn\.Module, got a function"):
        check_network(networks.NetworkSpec(target=f"{name}:make_q"), (4,), 2)


def test_a_module_with_state_outside_its_parameters_is_refused():
    spec = networks.NetworkSpec(
        target="flax.linen:BatchNorm", kwargs=(("use_running_average", False),)
    )
    with pytest.raises(ConfigError, match=r"keeps state outside its parameters \(batch_stats\)"):
        check_network(spec, (4,), 4)


def test_a_module_that_fails_to_import_is_one_line_with_its_error(user_module):
    name = user_module("broken_q", "import no_such_dependency\n")
    with pytest.raises(ConfigError) as err:
        check_network(networks.NetworkSpec(target=f"{name}:make_q"), (4,), 2)
    assert str(err.value) == (
        "network.target='broken_q:make_q': cannot import module broken_q "
        "(ModuleNotFoundError: No module named 'no_such_dependency')"
    )


def test_hydras_dotted_form_names_the_same_factory(examples_importable):
    dotted = networks.NetworkSpec(type=2, target="my_networks.make_q")
    assert networks.split_target(dotted.target) == ("my_networks", "make_q")
    check_network(dotted, (4,), 2)  # no error


@pytest.mark.slow
def test_the_readme_example_network_trains_on_the_host_driver(tmp_path, examples_importable):
    run = tmp_path / "run"
    result = softq_train(
        *FAST_CUSTOM, "network=custom", "network.target=my_networks:make_q",
        "network.kwargs={hidden_sizes:[16]}", f"hydra.run.dir={run}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads((run / "status.json").read_text()) == {"status": "finished", "step": 600}
    config = (run / "config.yaml").read_text()
    assert "name: my_networks:make_q" in config  # network.name, what analysis groups by
    assert "hidden_sizes:\n    - 16" in config


@pytest.mark.slow
def test_a_type1_custom_network_runs_a_batched_sweep_on_the_device_driver(
    tmp_path, examples_importable
):
    sweep = tmp_path / "sweep"
    result = softq_train(
        "-m", *FAST_CUSTOM, "network=custom", "network.target=my_networks:make_q_sa",
        "network.type=1", "tau=0,0.1", "driver=device", "hydra/launcher=batched",
        f"hydra.sweep.dir={sweep}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for job in ("0", "1"):
        assert json.loads((sweep / job / "status.json").read_text()) == {
            "status": "finished", "step": 600,
        }  # fmt: skip
        assert any("eval/return_mean" in json.loads(line) for line in (sweep / job / "metrics.jsonl").open())
