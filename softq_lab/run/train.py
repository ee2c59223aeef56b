"""`softq-train`: one training run (or, with `-m`, a sweep of them) composed by Hydra.

    softq-train                                   # the main job: CartPole, type-2 network, soft τ
    softq-train env=frozenlake network=tabular tau=0.1
    softq-train -m tau=0,0.01,0.1 seed=0,1,2      # a sweep: one job per combination
    softq-train -m tau=0,0.1 'seed=range(8)' hydra/launcher=batched   # a sweep as one program

Flow: Hydra's DictConfig -> validated RunConfig (a bad value exits 2 with one line, before any file of
the run is written: `prepare`) -> `batch.run_jobs`: env -> driver (host, or device with `driver=device`)
-> RunLogger (metrics.jsonl, wandb) in the job's output dir. The batched launcher calls the same two.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any, NamedTuple

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from softq_lab.conf import CONFIG_DIR
from softq_lab.run import overrides, rundir
from softq_lab.run.config import (
    ConfigError,
    RunConfig,
    WandbConfig,
    check_network,
    from_dict,
    one_line,
)
from softq_lab.run.loggers import CONFIG_FILE, wandb_credentials_found, write_status

PROG = "softq-train"


def enable_compilation_cache() -> None:
    """Persist compiled programs across processes (start-up drops from seconds to a fraction)."""
    import jax

    cache_dir = os.environ.get("JAX_COMPILATION_CACHE_DIR") or str(
        Path.home() / ".cache" / "softq-lab" / "jax"
    )
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


def _wandb_group(cfg: RunConfig) -> str | None:
    """The configured group, else for a multirun job the sweep's name: Hydra's job name and the
    sweep dir's name (`train-13-41-15`, `train-tau_sweep`); a single run has none."""
    if cfg.logger.wandb.group is not None:
        return cfg.logger.wandb.group
    hc = HydraConfig.get()
    return f"{hc.job.name}-{Path(hc.sweep.dir).name}" if hc.mode == RunMode.MULTIRUN else None


def _wandb_name() -> str:
    """The job's command-line overrides as Hydra's `override_dirname` writes them (`seed=3,tau=0.1`),
    leaving out those that do not change the run (`rundir.NOT_COMPARED`: `resume=true` keeps the
    name); `defaults` for a run with none."""
    task = [o for o in HydraConfig.get().overrides.task
            if o.split("=", 1)[0].lstrip("+~") not in rundir.NOT_COMPARED]  # fmt: skip
    return ",".join(sorted(task)) or "defaults"


class Job(NamedTuple):
    """A validated job whose run dir holds its config.yaml, ready for a driver."""

    run_dir: Path
    cfg: RunConfig
    resolved: dict[str, Any]  # the composed config as written to config.yaml
    wandb: WandbConfig


def prepare(cfg: DictConfig) -> Job:
    """Validate the job's config (ConfigError, before any file is written), then write its
    config.yaml into the Hydra job's output dir."""
    from softq_lab.envs import make as make_env

    resolved: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    run_cfg = from_dict(resolved)
    env = make_env.make(run_cfg.env)  # an unknown id or bad kwargs is a ConfigError here
    observations = env.unwrapped.observation_space
    obs_shape, n_actions = env.observation_space.shape, int(env.action_space.n)
    env.close()
    if run_cfg.network.target is not None:  # network=custom: the user's module, tried once
        check_network(run_cfg.network, obs_shape, n_actions)
    if run_cfg.network_name == "tabular" and not make_env.is_discrete(observations):
        raise ConfigError(
            f"network=tabular: env.id={run_cfg.env.id!r} has continuous observations "
            f"({type(observations).__name__}{observations.shape}); a table needs discrete ones "
            "(e.g. FrozenLake, Taxi, MaxBias), use network=type1 or network=type2"
        )
    if run_cfg.logger.wandb.mode == "online" and not wandb_credentials_found():
        raise ConfigError(
            "logger.wandb.mode='online': no wandb credentials here (WANDB_API_KEY or `wandb "
            "login`); log in, or keep logger.wandb.mode=offline and `wandb sync` the runs later"
        )
    if run_cfg.driver == "device":
        from softq_lab.envs import native

        reason = native.why_not(run_cfg.env)
        if reason is not None:
            raise ConfigError(
                f"driver=device: env.id={run_cfg.env.id!r} has no JAX version ({reason}); "
                "use driver=host or driver=auto"
            )

    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    resolved["double"] = run_cfg.double  # normalised: none | target | twin (true means target)
    group = _wandb_group(run_cfg)
    resolved["logger"]["wandb"]["group"] = group
    dir_key = "hydra.sweep.dir" if hc.mode == RunMode.MULTIRUN else "hydra.run.dir"
    rundir.check(run_dir, resolved, run_cfg.resume, dir_key)
    (run_dir / CONFIG_FILE).write_text(OmegaConf.to_yaml(resolved), encoding="utf-8")
    wandb = dataclasses.replace(run_cfg.logger.wandb, group=group, name=_wandb_name())
    return Job(run_dir, run_cfg, resolved, wandb)


def run(cfg: DictConfig) -> dict[str, float]:
    """Validate, then train, logging into the Hydra job's output dir; returns the final eval.

    Whatever goes wrong ends in one line on stderr and the job's `status.json`. A single run then
    exits non-zero (2 for a bad value, 1 otherwise); a job of a sweep returns, so the sweep goes on
    (`sweep_report` lists the jobs that did not finish)."""
    sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        job = prepare(cfg)
    except ConfigError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        if not sweep:
            sys.exit(2)  # nothing of the run written
        write_status(run_dir, "failed", 0, str(err))
        return {}
    from softq_lab.run import batch  # the drivers: imported once the config is known to be good

    enable_compilation_cache()
    try:
        result = batch.run_jobs([job], batched=False)[0]
    except Exception as err:  # the run's status.json says `failed` (batch._close_all)
        message = one_line(err)
        print(f"{PROG}: run failed: {message}", file=sys.stderr)
        _keep_traceback(run_dir)
        if not sweep:
            sys.exit(1)
        return {}
    if not result.get("skipped"):
        _print_summary(job, result, sweep)
    if result.get("skipped"):
        print(f"{PROG}: {job.run_dir} holds a run that {result['status']} at step "
              f"{result['step']}; nothing to resume", file=sys.stderr)  # fmt: skip
    elif result["status"] in ("killed", "preempted"):
        print(f"{PROG}: interrupted ({result['status']}) at step {result['step']}; resume with: "
              f"{resume_command(job.run_dir)}", file=sys.stderr)  # fmt: skip
        sys.exit(1)  # a stop signal stops a sweep too: its later jobs do not start
    elif result["status"] != "finished":
        print(f"{PROG}: run {result['status']} at step {result['step']}: {result['error']}",
              file=sys.stderr)  # fmt: skip
    if result["status"] != "finished" and not sweep:
        sys.exit(1)
    return result["eval"]


def _print_summary(job: Job, result: dict[str, Any], sweep: bool) -> None:
    """On stdout: a single run's summary block; a sweep job's one line (the sweep ends with a
    table of all its jobs, `sweep_report`)."""
    from softq_lab.run import console

    if sweep:
        hc = HydraConfig.get()
        lines = [console.job_line(f"#{hc.job.num} {job.wandb.name}", result)]
    else:
        lines = console.summary_block(result, job.run_dir, job.wandb)
    print("\n".join(lines), flush=True)


def _keep_traceback(run_dir: Path) -> None:
    """The full traceback of a failed run, for its author, in `<run_dir>/error.txt` (if writable)."""
    import traceback

    with contextlib.suppress(OSError):
        (run_dir / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")


def resume_command(run_dir: Path) -> str:
    """The command line that continues this run from its last checkpoint."""
    import shlex

    hc = HydraConfig.get()
    task = [o for o in hc.overrides.task if not o.startswith("resume=")]
    key = "hydra.sweep.dir" if hc.mode == RunMode.MULTIRUN else "hydra.run.dir"
    where = hc.sweep.dir if hc.mode == RunMode.MULTIRUN else run_dir
    return shlex.join([PROG, *task, "resume=true", f"{key}={where}"])


@hydra.main(version_base=None, config_path=str(CONFIG_DIR), config_name="config")
def _main(cfg: DictConfig) -> float | None:
    return run(cfg).get("eval/return_mean")


def main() -> None:
    """Console entry point (`softq-train`)."""
    try:
        overrides.check_groups(sys.argv[1:], CONFIG_DIR)
        overrides.check_config_dirs(sys.argv[1:])
    except ConfigError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        sys.exit(2)
    try:
        _main()
    except KeyboardInterrupt:  # before or after training (during it, the run saves and says so)
        print(f"{PROG}: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
