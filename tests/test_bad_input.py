"""Bad input: one line naming key, value and what is allowed; exit 2; no run files written."""

import importlib.util

import pytest

from helpers import FAST, softq_train

CASES = [
    (["env.id=NoSuchEnv-v0"], "env.id='NoSuchEnv-v0'"),
    (["env.id=Pendulum-v1"], "is not Discrete"),
    (["env.id=CartPole-v1", "+env.kwargs.no_such_arg=1"], "env.kwargs={'no_such_arg': 1}"),
    (["tau=-0.5"], "tau=-0.5: must be a number >= 0"),
    (["tau=abc"], "tau='abc'"),
    (["n_step=0"], "n_step=0: must be an integer >= 1"),
    (["gamma=1.5"], "gamma=1.5: must be a number >= 0 and <= 1"),
    (["gamma=-0.1"], "gamma=-0.1"),
    (["batch_size=0"], "batch_size=0: must be an integer >= 1"),
    (["buffer.capacity=-5"], "buffer.capacity=-5"),
    (["network.hidden_sizes=[64,0]"], "network.hidden_sizes=0"),
    (["total_steps=0"], "total_steps=0: must be an integer >= 1"),
    (["batch_size=64", "buffer.capacity=32"], "batch_size=64: must be <= buffer.capacity (32)"),
    (["lr=0"], "lr=0"),
    (["operator=max"], "operator='max': must be one of"),
    (["optim.name=nosuchopt"], "optim.name='nosuchopt'"),
    (["logger.wandb.mode=sometimes"], "logger.wandb.mode='sometimes'"),
    (["~tau"], "tau: missing from the config"),
    (["buffer=5"], "buffer=5: must be a mapping"),
    (["total_episodes=0"], "total_episodes=0: must be an integer >= 1"),
    (["driver=gpu"], "driver='gpu': must be one of auto, host, device"),
    (["driver=device", "env.id=Blackjack-v1"], "driver=device: env.id='Blackjack-v1' has no JAX"),
]


@pytest.mark.parametrize("overrides,message", CASES, ids=[c[0][-1] for c in CASES])
def test_bad_value_exits_2_with_one_line_and_writes_no_run_files(tmp_path, overrides, message):
    out = tmp_path / "run"
    result = softq_train(*FAST, *overrides, f"hydra.run.dir={out}", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("softq-train: error: ") and message in lines[0]
    assert "Traceback" not in result.stderr
    written = {p.name for p in out.iterdir()} if out.exists() else set()
    assert written <= {".hydra"}, written  # Hydra's own folder aside, nothing


@pytest.mark.skipif(importlib.util.find_spec("Box2D") is not None, reason="Box2D is installed")
def test_an_env_whose_dependencies_are_missing_is_one_line(tmp_path):
    result = softq_train("env.id=LunarLander-v3", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("softq-train: error: env.id='LunarLander-v3': cannot be made here: ")
    assert "Box2D" in line  # gymnasium's own hint on what to install


def test_unknown_group_option_is_hydras_own_error(tmp_path):
    result = softq_train("env=nosuchenv", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode != 0
    assert "nosuchenv" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
