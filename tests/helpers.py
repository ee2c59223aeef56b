"""Running the real entry point in a subprocess, as a user would."""

import os
import subprocess
import sys
from pathlib import Path

FAST = [  # a run of a few seconds: tiny network, few steps
    "total_steps=600",
    "buffer.learning_starts=100",
    "batch_size=32",
    "network.hidden_sizes=[16]",
    "eval.every=300",
    "eval.episodes=2",
    "logger.every=200",
]


def softq_train(
    *overrides: str,
    cwd: Path,
    timeout: float = 300,
    prog: tuple[str, ...] = (sys.executable, "-m", "softq_lab.run.train"),
) -> subprocess.CompletedProcess:
    """Run softq-train (by default this interpreter's; `prog`: another command, e.g. an installed
    `softq-train` script) with offline wandb on the CPU."""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "JAX_PLATFORMS": "cpu"}
    return subprocess.run(
        [*prog, *overrides],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
