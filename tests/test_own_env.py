"""A user's own env, named `module:EnvId` as `gym.make` takes it: the module's import registers it,
in this process and in every worker process a sweep starts."""

import json
from pathlib import Path

import pytest

from softq_lab.envs import make as make_env
from softq_lab.envs import native
from softq_lab.run.config import ConfigError, EnvConfig

from helpers import FAST, softq_train

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CORRIDOR = "my_envs:Corridor-v0"
TABULAR = [o for o in FAST if not o.startswith("network.")] + ["network=tabular", "gamma=0.9"]


@pytest.fixture
def examples_importable(monkeypatch):
    """`examples/` on this process's path and on its subprocesses' (PYTHONPATH), as the README
    example runs it."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setenv("PYTHONPATH", str(EXAMPLES))


def env_config(env_id):
    return EnvConfig(id=env_id, name=env_id)


def test_a_module_form_id_imports_the_module_and_makes_its_env(examples_importable):
    env = make_env.make(env_config(CORRIDOR))
    assert env.observation_space.shape == (6,)  # Discrete(6) as one-hot
    assert env.action_space.n == 2
    obs, _ = env.reset(seed=0)
    assert obs.tolist() == [1, 0, 0, 0, 0, 0]
    env.close()


def test_a_module_form_id_with_a_tabular_model_has_a_jax_version(examples_importable):
    cfg = env_config(CORRIDOR)
    assert native.why_not(cfg) is None
    jax_env = native.make(cfg)
    assert (jax_env.obs_shape, jax_env.n_actions, jax_env.max_episode_steps) == ((6,), 2, 50)


def test_a_module_that_cannot_be_imported_is_one_line():
    with pytest.raises(ConfigError) as err:
        make_env.check_id("no_such_module.envs:Corridor-v0")
    assert str(err.value) == (
        "env.id='no_such_module.envs:Corridor-v0': cannot import module no_such_module.envs "
        "(ModuleNotFoundError: No module named 'no_such_module')"
    )


def test_a_module_that_imports_but_does_not_register_the_id_is_one_line():
    with pytest.raises(ConfigError) as err:
        make_env.check_id("json:Nowhere-v0")
    assert str(err.value).startswith(
        "env.id='json:Nowhere-v0': module json imports but does not register Nowhere-v0"
    )


@pytest.mark.parametrize("env_id", [":Corridor-v0", "a:b:Corridor-v0"])
def test_an_id_with_an_empty_module_or_two_colons_is_refused(env_id):
    with pytest.raises(ConfigError, match=r"must be a gymnasium id .* or module:EnvId"):
        make_env.check_id(env_id)


@pytest.mark.slow
def test_the_readme_example_env_trains_and_is_labelled_by_its_id(tmp_path, examples_importable):
    run = tmp_path / "run"
    result = softq_train(*TABULAR, f"env.id={CORRIDOR}", f"hydra.run.dir={run}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads((run / "status.json").read_text()) == {"status": "finished", "step": 600}
    assert f"name: {CORRIDOR}" in (run / "config.yaml").read_text()  # env.name, what analysis groups by
    evals = [r for r in map(json.loads, (run / "metrics.jsonl").open()) if "eval/return_mean" in r]
    assert evals and "exact/bias_qstar" in evals[-1]  # its model gives exact diagnostics


@pytest.mark.slow
def test_a_batched_sweep_of_the_example_env_runs_in_a_submitit_worker(tmp_path, examples_importable):
    """The worker is a new process: it imports the env's module again, from the id alone."""
    sweep = tmp_path / "sweep"
    result = softq_train(
        "-m", *TABULAR, f"env.id={CORRIDOR}", "tau=0,0.1", "hydra/launcher=batched",
        "hydra.launcher.submitit=local", f"hydra.sweep.dir={sweep}", cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "no JAX version" not in result.stderr  # the device driver, from the env's model
    for job in ("0", "1"):
        status = json.loads((sweep / job / "status.json").read_text())
        assert status == {"status": "finished", "step": 600}
