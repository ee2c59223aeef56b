"""`hydra/launcher=batched`: a sweep's jobs as few compiled programs, each job an ordinary Hydra job.

    softq-train -m tau=0,0.01,0.1,1 'seed=range(8)' hydra/launcher=batched

For every job the launcher does what Hydra's basic launcher does up to the task itself (its output
dir, `.hydra/`, the validated `config.yaml`: `train.prepare`); then it runs the prepared jobs in
batches (`batch.run_jobs`), so each job still gets `metrics.jsonl`, `perf.jsonl`, `status.json` and
its own offline wandb run. A job with a bad value is reported in one line and the others run; the
sweep exits non-zero if any job did not finish, listing those jobs (`softq_lab.run.sweep_report`).

`hydra.launcher.max_batch` caps the runs per program (memory: see the README). With
`hydra.launcher.submitit=local` or `slurm`, each batch is handed to submitit as one job (a 1,000-run
sweep becomes a few cluster jobs); its parameters are `hydra.launcher.timeout_min`, `partition`,
`gpus_per_node`, `cpus_per_task`, `mem_gb`. A preempted batch saves a checkpoint per run, is requeued
and resumes (`BatchTask.checkpoint`).
"""

import sys

# No `from __future__ import annotations`: Hydra loads plugins outside sys.modules, and the
# structured config below needs its annotations evaluated (hence Optional, not `X | None`).
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from hydra.core.utils import (
    JobReturn,
    JobStatus,
    configure_log,
    filter_overrides,
    run_job,
    setup_globals,
)
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

from hydra_plugins.softq_lab_launcher.sweep_configs import ComposedOnce
from softq_lab.run.loggers import write_status

PROG = "softq-train"


@dataclass
class BatchedLauncherConf:
    _target_: str = "hydra_plugins.softq_lab_launcher.batched_launcher.BatchedLauncher"
    max_batch: int = 256  # runs per compiled program; larger groups are split
    submitit: Optional[str] = None  # null: run here | local | slurm: each batch as one submitit job
    timeout_min: int = 240
    partition: Optional[str] = None
    gpus_per_node: int = 0
    cpus_per_task: int = 2
    mem_gb: int = 8


ConfigStore.instance().store(
    group="hydra/launcher", name="batched", node=BatchedLauncherConf, provider="softq_lab"
)


class BatchedLauncher(Launcher):
    def __init__(self, **params: Any) -> None:
        self.params = BatchedLauncherConf(**params)
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context = config, hydra_context
        # The sweeper (validating each job) and this launcher compose every job through this
        # loader: compose once per shape of overrides instead (sweep_configs.py).
        loader = hydra_context.config_loader
        if not isinstance(loader.load_sweep_config, ComposedOnce):
            loader.load_sweep_config = ComposedOnce(loader)  # type: ignore[method-assign]

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from softq_lab.run import train

        setup_globals()
        assert self.config is not None and self.hydra_context is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        returns: list[JobReturn] = []
        prepared: list[tuple[int, train.Job]] = []
        for offset, overrides in enumerate(job_overrides):
            idx = initial_job_idx + offset
            sweep_config = self.hydra_context.config_loader.load_sweep_config(
                self.config, list(overrides)
            )
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = idx
                sweep_config.hydra.job.num = idx
            ret = run_job(
                hydra_context=self.hydra_context,
                task_function=train.prepare,
                config=sweep_config,
                job_dir_key="hydra.sweep.dir",
                job_subdir_key="hydra.sweep.subdir",
            )
            returns.append(ret)
            if ret.status == JobStatus.COMPLETED:
                prepared.append((offset, ret._return_value))
            else:  # a bad value: this job fails, the others run
                print(f"{PROG}: error: job #{idx} ({_label(overrides)}): {ret._return_value}",
                      file=sys.stderr)  # fmt: skip
                job_dir = Path(str(ret.hydra_cfg.hydra.runtime.output_dir))
                write_status(job_dir, "failed", 0, str(ret._return_value))
                ret.status, ret.return_value = JobStatus.COMPLETED, None  # reported at the end
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)

        # Which jobs did not finish is read from their status.json at the end of the sweep
        # (`softq_lab.run.sweep_report`), as for every launcher.
        results = self._run([job for _, job in prepared])
        for (offset, _), result in zip(prepared, results, strict=True):
            returns[offset].return_value = result["eval"].get("eval/return_mean")
        return returns

    def _run(self, jobs: list[Any]) -> list[dict[str, Any]]:
        from softq_lab.run import batch

        p = self.params
        if p.submitit is None:
            from softq_lab.run.train import enable_compilation_cache

            enable_compilation_cache()
            return batch.run_jobs(jobs, p.max_batch)
        if p.submitit not in ("local", "slurm"):
            print(f"{PROG}: error: hydra.launcher.submitit={p.submitit!r}: must be null, local or "
                  "slurm", file=sys.stderr)  # fmt: skip
            sys.exit(2)
        import submitit

        assert self.config is not None
        folder = Path(str(self.config.hydra.sweep.dir)) / ".submitit" / "%j"
        executor = submitit.AutoExecutor(folder=folder, cluster=p.submitit)
        params: dict[str, Any] = {"timeout_min": p.timeout_min, "cpus_per_task": p.cpus_per_task}
        if p.submitit == "slurm":
            params.update(slurm_partition=p.partition, gpus_per_node=p.gpus_per_node,
                          mem_gb=p.mem_gb)  # fmt: skip
        executor.update_parameters(**params)
        batches = batch.groups(jobs, p.max_batch)
        submitted = [
            executor.submit(BatchTask(), [jobs[i] for i in members], p.max_batch)
            for members in batches
        ]
        results: list[dict[str, Any]] = [{} for _ in jobs]
        for members, job in zip(batches, submitted, strict=True):
            for i, result in zip(members, job.result(), strict=True):
                results[i] = result
        return results


class BatchTask:
    """One submitit job: a batch of prepared jobs, in a fresh process. Preempted, it saves (the
    drivers' stop signals), and submitit's requeue calls `checkpoint`: the requeued task resumes."""

    def __call__(self, jobs: list[Any], max_batch: int) -> list[dict[str, Any]]:
        import os

        from softq_lab.run import batch
        from softq_lab.run.train import enable_compilation_cache

        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # batches may share a GPU
        enable_compilation_cache()
        return batch.run_jobs(jobs, max_batch)

    def checkpoint(self, jobs: list[Any], max_batch: int) -> Any:
        import dataclasses

        import submitit

        resumed = [job._replace(cfg=dataclasses.replace(job.cfg, resume=True)) for job in jobs]
        return submitit.helpers.DelayedSubmission(BatchTask(), resumed, max_batch)


def _label(overrides: Sequence[str]) -> str:
    return " ".join(filter_overrides(overrides)) or "(defaults)"
