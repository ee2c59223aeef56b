"""Bad input: one line naming key, value and what is allowed; exit 2; no run files written."""

import importlib.util

import pytest

from helpers import FAST, softq_train

CASES = [
    (["env.id=NoSuchEnv-v0"], "env.id='NoSuchEnv-v0'"),
    (["env.id=Pendulum-v1"], "is not Discrete"),
    # a user's own env, `module:EnvId`
    (["env.id=no_such_module:Corridor-v0"], "env.id='no_such_module:Corridor-v0': cannot import "
     "module no_such_module (ModuleNotFoundError: No module named 'no_such_module')"),
    (["env.id=json:Corridor-v0"], "module json imports but does not register Corridor-v0"),
    (["env.id=CartPole-v1", "+env.kwargs.no_such_arg=1"], "env.kwargs={'no_such_arg': 1}"),
    (["tau=-0.5"], "tau=-0.5: must be a finite number >= 0"),
    (["tau=abc"], "tau='abc'"),
    (["n_step=0"], "n_step=0: must be an integer >= 1"),
    (["gamma=1.5"], "gamma=1.5: must be a finite number >= 0 and <= 1"),
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
    # non-finite numbers are rejected like negative ones
    (["tau=inf"], "tau=inf: must be a finite number >= 0"),
    (["tau=nan"], "tau=nan"),
    (["lr=inf"], "lr=inf: must be a finite number > 0"),
    (["gamma=-inf"], "gamma=-inf"),
    (["exploration.tau=inf"], "exploration.tau=inf"),
    (["optim.max_grad_norm=inf"], "optim.max_grad_norm=inf"),
    # an env's own check of its kwargs
    (["env=frozenlake", "env.kwargs.map_name=16x16"], "not accepted by FrozenLake-v1: KeyError: '16x16'"),
    (["env=maxbias", "env.kwargs.n_b_actions=0"], "not accepted by MaxBias-v0: n_b_actions must be"),
    # optimizer arguments: checked by one update of a tiny tree, not at the run's first update
    (["+optim.kwargs.b1=abc"], "optim.kwargs={'b1': 'abc'}: not accepted by optax.adam"),
    (["optim.name=sgd", "+optim.kwargs.momentum=inf"], "optax.sgd makes non-finite updates"),
    (["optim.kwargs=[1,2]"], "optim.kwargs=[1, 2]: must be a mapping"),
    # settings no one means
    (["buffer.learning_starts=600"], "buffer.learning_starts=600: must be < total_steps (600)"),
    (["n_step=40", "buffer.capacity=35"], "n_step=40: must be <= buffer.capacity (35)"),
    (["network=tabular"], "network=tabular: env.id='CartPole-v1' has continuous observations"),
    # a user's own network, network=custom network.target=pkg.module:make_q
    (["network=custom"], "network.target=None: must name your network's factory as pkg.module:"),
    (["network=custom", "network.target=no_such_module:make_q"],
     "network.target='no_such_module:make_q': cannot import module no_such_module "
     "(ModuleNotFoundError: No module named 'no_such_module')"),
    (["network=custom", "network.target=json:make_q"], "module json has no attribute make_q"),
    (["network=custom", "network.target=math:pi"], "math.pi is not callable (a float)"),
    (["network=custom", "network.target=flax.linen:Dense", "network.kwargs={features:3}"],
     "network.target='flax.linen:Dense': q(s, ·) must have shape [batch, n_actions] = [1, 2], "
     "got [1, 3]"),
    (["network=custom", "network.target=flax.linen:Dense", "network.kwargs={features:1}",
      "network.type=1"], "q(s, a) = module(obs, one-hot action) (network.type=1) fails on inputs"),
    (["network=custom", "network.target=flax.linen:BatchNorm",
      "network.kwargs={use_running_average:false}"], "keeps state outside its parameters"),
    (["network=custom", "network.target=flax.linen:Dense", "network.kwargs={features:2,x:1}"],
     "flax.linen.Dense(features=2, x=1) failed: TypeError"),
    (["network=custom", "network.target=flax.linen:Dense", "network.kwargs={features:{a:1}}"],
     "network.kwargs.features={'a': 1}: must be a number, string, boolean, null or a list of them"),
    (["network=custom", "network.target=flax.linen:Dense", "network.kwargs={n_actions:3}"],
     "network.kwargs.n_actions=3: set by the env, not here"),
    # things Hydra itself would answer with a traceback
    (["env=3"], "env=3: must be one of acrobot, cartpole,"),
    (["-m", "env=cartpole,3"], "env=3: must be one of"),
    (["hydra.run.dir=/dev/null/run"], "hydra.run.dir=/dev/null/run: cannot be a directory"),
    (["logger.wandb.mode=online"], "logger.wandb.mode='online': no wandb credentials"),
    # one of each remaining kind of check
    (["total_steps=1.5"], "total_steps=1.5: must be an integer >= 1"),
    (["seed=-1"], "seed=-1: must be an integer >= 0"),
    (["network.type=3"], "network.type=3: must be one of 1, 2"),
    (["network.activation=swish2"], "network.activation='swish2'"),
    (["network.init=ones"], "network.init='ones': must be one of default, zeros"),
    (["network.use_bias=maybe"], "network.use_bias='maybe': must be true or false"),
    (["double=maybe"], "double='maybe': must be one of none, target, twin"),
    (["operator=mellowmax", "double=target"], "double=target supports soft and boltzmann"),
    (["lr_schedule=cosine"], "lr_schedule='cosine': must be one of constant, linear"),
    (["loss=l1"], "loss='l1': must be one of huber, mse"),
    (["entropy_bonus=2"], "entropy_bonus=2: must be true or false"),
    (["train.every=0"], "train.every=0: must be an integer >= 1"),
    (["target.polyak=0"], "target.polyak=0: must be a finite number > 0 and <= 1"),
    (["exploration.eps_start=2"], "exploration.eps_start=2: must be a finite number >= 0 and <= 1"),
    (["eval.episodes=0"], "eval.episodes=0: must be an integer >= 1"),
    (["eval.diagnostics_policy=best"], "eval.diagnostics_policy='best'"),
    (["env.max_episode_steps=0"], "env.max_episode_steps=0: must be an integer >= 1"),
    (["logger.every=0"], "logger.every=0: must be an integer >= 1"),
    (["logger.progress=sometimes"], "logger.progress='sometimes'"),
    (["checkpoint.every=-1"], "checkpoint.every=-1: must be an integer >= 0"),
    (["checkpoint.keep=0"], "checkpoint.keep=0: must be an integer >= 1"),
    (["resume=maybe"], "resume='maybe': must be true or false"),
]


@pytest.mark.parametrize("overrides,message", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_value_exits_2_with_one_line_and_writes_no_run_files(
    tmp_path, monkeypatch, overrides, message
):
    monkeypatch.setenv("HOME", str(tmp_path))  # no wandb credentials (~/.netrc) here
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    out = tmp_path / "run"
    where = [] if any(o.startswith("hydra.run.dir=") for o in overrides) else [f"hydra.run.dir={out}"]
    # network=custom has no hidden_sizes (its own module takes what it needs from network.kwargs)
    custom = "network=custom" in overrides
    fast = [o for o in FAST if not (custom and o.startswith("network."))]
    result = softq_train(*fast, *overrides, *where, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("softq-train: error: ") and message in lines[0]
    assert "Traceback" not in result.stderr
    written = {p.name for p in out.iterdir()} if out.exists() else set()
    assert written <= {".hydra"}, written  # Hydra's own folder aside, nothing
    assert not (tmp_path / "multirun").exists()  # a sweep with a bad value does not start


def test_there_are_at_least_40_cases():
    assert len(CASES) >= 40


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


def test_each_optimizer_setting_is_checked_once_per_process(monkeypatch):
    from softq_lab.run import config

    checked, check = [], config._updates_finite
    monkeypatch.setattr(config, "OPTIMIZERS_CHECKED", {})
    monkeypatch.setattr(config, "_updates_finite", lambda *a: checked.append(a[2]) or check(*a))
    for kwargs in [{"b1": 0.8}, {"b1": 0.8}, {"b1": 0.7}, {"b1": 0.8}]:  # a sweep's jobs
        assert config._optimizer("adam", kwargs) == "adam"
    assert checked == [{"b1": 0.8}, {"b1": 0.7}]
    for _ in range(2):  # a bad setting is refused for every job that has it
        with pytest.raises(config.ConfigError, match=r"optax\.sgd makes non-finite updates"):
            config._optimizer("sgd", {"momentum": float("inf")})
        with pytest.raises(config.ConfigError, match=r"not accepted by optax\.adam"):
            config._optimizer("adam", {"b1": "abc"})
