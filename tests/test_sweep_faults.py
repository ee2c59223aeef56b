"""A sweep never loses a job: a bad value or a runtime error fails that job alone, in its own
status.json; the others finish; the sweep exits non-zero and ends by listing the jobs that did not."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from helpers import FAST

# An env that raises on its first step after a reset with seed 2 (jobs seed=2 fail at runtime),
# registered in every process of the sweep (workers included) through `sitecustomize`.
SITECUSTOMIZE = textwrap.dedent("""
    import gymnasium
    from gymnasium.envs.classic_control import CartPoleEnv

    class Exploding(CartPoleEnv):
        def reset(self, *, seed=None, options=None):
            if seed is not None:
                self.doomed = seed == 2
            return super().reset(seed=seed, options=options)

        def step(self, action):
            if getattr(self, "doomed", False):
                raise RuntimeError("the simulator crashed")
            return super().step(action)

    gymnasium.register("Exploding-v0", entry_point=Exploding, max_episode_steps=500)
""")
LAUNCHERS = {
    "basic": [],
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    "submitit_local": ["hydra/launcher=submitit_local"],
    "batched": ["hydra/launcher=batched"],
}


def sweep(tmp_path, *overrides):
    (tmp_path / "site").mkdir(exist_ok=True)
    (tmp_path / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    path = os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": path}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "softq_lab.run.train", "-m", *FAST, *overrides,
         f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def status(job_dir):
    return json.loads((job_dir / "status.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_a_bad_value_and_a_crash_fail_their_jobs_only(tmp_path, launcher):
    result = sweep(tmp_path, "env.id=Exploding-v0", "seed=0,-1,2,3", *LAUNCHERS[launcher])
    jobs = tmp_path / "sweep"

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    for finished in ("0", "3"):
        assert status(jobs / finished)["status"] == "finished"
        assert (jobs / finished / "metrics.jsonl").stat().st_size > 0
    bad, crashed = status(jobs / "1"), status(jobs / "2")
    assert bad == {"status": "failed", "step": 0, "error": "seed=-1: must be an integer >= 0"}
    assert crashed["status"] == "failed"
    assert crashed["error"] == "RuntimeError: the simulator crashed"

    table = result.stdout.strip().splitlines()[-7:-2]  # whatever the launcher: on stdout
    assert [row.split()[:3] for row in table] == [
        ["job", "overrides", "status"], ["#0", "seed=0", "finished"], ["#1", "seed=-1", "failed"],
        ["#2", "seed=2", "failed"], ["#3", "seed=3", "finished"],
    ]  # fmt: skip
    last = result.stderr.strip().splitlines()[-3:]
    assert last[0] == "softq-train: 2 of 4 jobs did not finish:"
    assert last[1].startswith("  #1 ") and last[1].endswith(": failed: seed=-1: must be an integer >= 0")
    assert last[2].startswith("  #2 ") and last[2].endswith(": failed: RuntimeError: the simulator crashed")


def test_a_sweep_whose_jobs_all_finish_exits_0_and_lists_nothing(tmp_path):
    result = sweep(tmp_path, "seed=0,1")
    assert result.returncode == 0, result.stderr
    assert "did not finish" not in result.stderr
