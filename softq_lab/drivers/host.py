"""The host driver: one run on a gymnasium env, stepped in a Python loop.

It is the batched host driver with a batch of one (`batched_host.train_batch`): the same loop, the
same jitted act / learn functions (built once per process and shared by every run of a sweep), so a
run's records are the same whichever of the two ran it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym

from softq_lab.drivers import batched_host
from softq_lab.run.config import RunConfig

Logger = Callable[[int, dict[str, Any]], None]  # (global step, record) -> None


def train(cfg: RunConfig, env: gym.Env, log: Logger) -> dict[str, Any]:
    """Train on `env` for cfg.total_steps env steps (or cfg.total_episodes episodes), logging every
    record; returns `{"status", "step", "eval", "error"}` (see `batched_host.train_batch`)."""
    return batched_host.train_batch([cfg], [env], [log])[0]
