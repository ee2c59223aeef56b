"""The device driver: a run's randomness is its own, whatever batch it is in, and a batch is
deterministic; runs are grouped by what must be static; a diverging run stops alone."""

import dataclasses

import jax
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from softq_lab.drivers import device
from softq_lab.envs import classic_control
from softq_lab.run.config import from_dict
from softq_lab.run.train import CONFIG_DIR

SMALL = [
    "network.hidden_sizes=[32,32]",
    "batch_size=16",
    "buffer.capacity=2000",
    "buffer.learning_starts=100",
    "train.every=1",
    "train.updates=1",
]


def config(*overrides: str):
    with initialize_config_dir(str(CONFIG_DIR), version_base=None):
        cfg = compose("config", overrides=[*SMALL, *overrides])
    return from_dict(OmegaConf.to_container(cfg, resolve=True))


def run_steps(cfgs, steps: int):
    """The runs' states after `steps` env steps of one chunk (no logging, no evaluation)."""
    env = classic_control.cartpole()
    program = dataclasses.replace(device.Program.of(cfgs[0], env), eval_episodes=1)
    fns = device.compiled(program)
    params = jax.tree.map(lambda *x: np.stack(x), *[device.RunParams.of(c) for c in cfgs])
    runs = fns.init(params)
    runs, _ = fns.chunk(runs, params, np.int32(0), steps)
    return jax.device_get(runs)


def take(tree, r):
    return jax.tree.map(lambda x: x[r], tree)


@pytest.fixture(scope="module")
def batched_and_alone():
    seeds_taus = [(3, 0.0), (7, 0.1), (11, 1.0), (5, 0.01)]
    cfgs = [config(f"seed={s}", f"tau={t}") for s, t in seeds_taus]
    batched = run_steps(cfgs, 1100)
    alone = run_steps([cfgs[1]], 1100)
    return batched, alone


def test_a_run_takes_the_same_actions_batched_as_alone(batched_and_alone):
    batched, alone = batched_and_alone
    actions_batched = take(batched.train.buffer.data.action, 1)[:1100, 0]
    actions_alone = take(alone.train.buffer.data.action, 0)[:1100, 0]
    assert actions_batched.shape == (1100,)
    np.testing.assert_array_equal(actions_batched, actions_alone)


def test_a_run_has_the_same_parameters_batched_as_alone_after_1000_updates(batched_and_alone):
    batched, alone = batched_and_alone
    assert int(take(batched.updates, 1)) == 1001  # steps 100 … 1100 each learn once
    for a, b in zip(
        jax.tree.leaves(take(batched.train.learner.params, 1)),
        jax.tree.leaves(take(alone.train.learner.params, 0)),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_different_seeds_take_different_actions(batched_and_alone):
    batched, _ = batched_and_alone
    actions = batched.train.buffer.data.action[:, :1100, 0]
    assert not np.array_equal(actions[0], actions[3])


def test_the_same_batch_run_twice_is_bit_identical():
    cfgs = [config(f"seed={s}", "tau=0.1") for s in (0, 1)]
    first, second = run_steps(cfgs, 300), run_steps(cfgs, 300)
    for a, b in zip(jax.tree.leaves(first.train), jax.tree.leaves(second.train), strict=True):
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        np.testing.assert_array_equal(a, b)


def test_runs_that_differ_only_in_traced_values_share_a_program():
    a = config("seed=0", "tau=0", "gamma=0.9", "lr=0.01", "exploration.eps_end=0.1")
    b = config("seed=5", "tau=1", "gamma=0.99", "lr=0.001", "lr_schedule=constant")
    assert device.program_key(a) == device.program_key(b)


@pytest.mark.parametrize("override", ["n_step=1", "batch_size=8", "network.hidden_sizes=[16]",
                                      "env=acrobot", "operator=mellowmax"])  # fmt: skip
def test_runs_that_differ_in_a_static_value_do_not(override):
    assert device.program_key(config()) != device.program_key(config(override))


def test_a_diverging_run_is_marked_diverged_and_its_batch_mates_finish():
    healthy = config("seed=0", "total_steps=600", "logger.every=200", "eval.every=600",
                     "eval.episodes=1", "optim.name=sgd", "optim.max_grad_norm=null",
                     "lr_schedule=constant")  # fmt: skip
    exploding = dataclasses.replace(healthy, seed=1, lr=1e30)
    # lr is traced, so both share a program; the huge sgd step makes q non-finite in a few updates
    assert device.program_key(healthy) == device.program_key(exploding)
    logs: list[list] = [[], []]
    results = device.train_batch(
        [healthy, exploding],
        classic_control.cartpole(),
        [lambda s, r, i=i: logs[i].append((s, r)) for i in range(2)],
    )
    assert results[0]["status"] == "finished" and results[0]["step"] == 600
    assert results[1]["status"] == "diverged"
    assert "non-finite" in results[1]["error"]
    assert any("eval/return_mean" in r for _, r in logs[0])
    assert not any("eval/return_mean" in r for _, r in logs[1])
    last = max(step for step, _ in logs[1])
    assert all(np.isfinite(v) for _, r in logs[1] for v in r.values() if isinstance(v, float))
    assert last <= results[1]["step"]


SHARDED = """
import json, jax, numpy as np
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from softq_lab.drivers import device
from softq_lab.envs import classic_control
from softq_lab.run.config import from_dict
from softq_lab.run.train import CONFIG_DIR
with initialize_config_dir(str(CONFIG_DIR), version_base=None):
    cfg = compose("config", overrides=[%s])
base = from_dict(OmegaConf.to_container(cfg, resolve=True))
import dataclasses
cfgs = [dataclasses.replace(base, seed=s, tau=t) for s, t in [(0, 0.0), (1, 0.1), (2, 1.0)]]
logs = [[] for _ in cfgs]
results = device.train_batch(cfgs, classic_control.cartpole(),
                             [lambda s, r, i=i: logs[i].append((s, r)) for i in range(3)])
print(json.dumps({"devices": jax.device_count(), "logs": logs,
                  "status": [r["status"] for r in results]}))
"""


@pytest.mark.slow
def test_a_batch_sharded_over_two_devices_logs_what_one_device_logs(tmp_path):
    """Three runs (padded to four) over two forced CPU devices, against the same on one device."""
    import json
    import os
    import subprocess
    import sys

    overrides = ", ".join(repr(o) for o in [*SMALL, "total_steps=600", "eval.every=300",
                                              "eval.episodes=2", "logger.every=200"])  # fmt: skip
    outputs = []
    for flags in ("", "--xla_force_host_platform_device_count=2"):
        env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": flags}
        result = subprocess.run([sys.executable, "-c", SHARDED % overrides], env=env,
                                capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        outputs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    one, two = outputs
    assert (one["devices"], two["devices"]) == (1, 2)
    assert one["status"] == two["status"] == ["finished"] * 3
    for a, b in zip(one["logs"], two["logs"], strict=True):
        assert [s for s, _ in a] == [s for s, _ in b]
        episodes_a = [r for _, r in a if "train/episode_return" in r]
        episodes_b = [r for _, r in b if "train/episode_return" in r]
        assert episodes_a[:5] == episodes_b[:5]  # the same actions, so the same first episodes
        finals = [r["eval/return_mean"] for _, r in a if "eval/return_mean" in r]
        assert finals == [r["eval/return_mean"] for _, r in b if "eval/return_mean" in r] or all(
            abs(x - y) <= 0.1 * max(abs(x), 1)
            for x, y in zip(
                finals,
                [r["eval/return_mean"] for _, r in b if "eval/return_mean" in r],
                strict=True,
            )
        )


def test_a_stopped_run_keeps_its_learner_while_its_batch_mates_learn_on():
    cfgs = [dataclasses.replace(config("total_steps=5000"), seed=s, total_episodes=n)
            for s, n in [(0, 20), (1, None)]]  # fmt: skip
    env = classic_control.cartpole()
    fns = device.compiled(device.Program.of(cfgs[0], env))
    params = jax.tree.map(lambda *x: np.stack(x), *[device.RunParams.of(c) for c in cfgs])
    runs, _ = fns.chunk(fns.init(params), params, np.int32(0), 1500)
    before = jax.device_get(runs)  # (the chunk donates its input)
    assert 100 < before.stopped_at[0] < 1500 and before.stopped_at[1] == 0  # stopped, after learning
    after = jax.device_get(fns.chunk(runs, params, np.int32(1500), 500)[0])

    def same(r: int) -> bool:  # run r's learner is bit for bit what it was (keys as their data)
        def data(state):
            return jax.tree.leaves(state._replace(key=jax.random.key_data(state.key)))

        pairs = zip(data(before.train.learner), data(after.train.learner), strict=True)
        return all(np.array_equal(a[r], b[r]) for a, b in pairs)

    assert same(0) and after.updates[0] == before.updates[0] > 0
    assert not same(1) and after.updates[1] == before.updates[1] + 500


@pytest.mark.parametrize("driver", ["device", "host"])
def test_each_run_stops_after_its_own_number_of_episodes(driver):
    from softq_lab.drivers import batched_host
    from softq_lab.envs import make as make_gym

    base = config("total_steps=3000", "logger.every=100", "eval.every=3000", "eval.episodes=1")
    cfgs = [dataclasses.replace(base, seed=s, total_episodes=n) for s, n in [(0, 5), (1, 9)]]
    assert device.program_key(cfgs[0]) == device.program_key(cfgs[1])  # the limit is traced
    logs: list[list] = [[], []]
    log_fns = [lambda s, r, i=i: logs[i].append((s, r)) for i in range(2)]
    if driver == "device":
        results = device.train_batch(cfgs, classic_control.cartpole(), log_fns)
    else:
        envs = [make_gym.make(c.env) for c in cfgs]
        results = batched_host.train_batch(cfgs, envs, log_fns)
    for n, log, result in zip([5, 9], logs, results, strict=True):
        log = [(s, r) for s, r in log if any(not k.startswith("perf/") for k in r)]  # not timings
        episodes = [(s, r) for s, r in log if "train/episode" in r]
        assert [r["train/episode"] for _, r in episodes] == list(range(n))
        last = episodes[-1][0]
        assert result == {**result, "status": "finished", "step": last}
        assert max(s for s, _ in log) == last  # nothing is logged after the last episode
        assert "eval/return_mean" in log[-1][1] and log[-1][0] == last
