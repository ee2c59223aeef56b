"""What happens at each evaluation: the greedy return, then the over-estimation diagnostics.

`Evaluator(cfg, env, act, q_act)` owns its own envs and seeds (separate from training), and the
exact truth of a tabular env; the driver calls `observe` on every training step (to count visited
pairs) and the evaluator itself with the current learner state every `eval.every` steps.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import jax
import numpy as np

from softq_lab.diagnostics import episodes, exact, exact_truth, monte_carlo
from softq_lab.envs import make as make_env
from softq_lab.run.config import RunConfig


def warn(message: str) -> None:
    print(f"softq-train: warning: {message}", file=sys.stderr)


class Evaluator:
    def __init__(self, cfg: RunConfig, env: gym.Env, act: Callable, q_act: Callable) -> None:
        self.cfg, self._act, self._q_act = cfg, act, q_act
        self._key = jax.random.key(cfg.seed + cfg.eval.seed)
        self._first = True
        self.greedy_envs = [make_env.make(cfg.env) for _ in range(cfg.eval.episodes)]
        # Diagnostics run the target policy (Boltzmann for τ > 0) unless told to use the greedy one.
        separate = cfg.tau > 0 and cfg.eval.diagnostics_policy == "target"
        self.target_envs = [make_env.make(cfg.env) for _ in self.greedy_envs] if separate else []
        self.truth = exact_truth.ExactTruth.maybe(
            env, gamma=cfg.gamma, tau=cfg.tau, operator=cfg.operator, n_step=cfg.n_step,
            entropy_bonus=cfg.entropy_bonus,
        )  # fmt: skip
        if self.truth is not None and not self.truth.fixed.converged:
            warn(
                f"no fixed point of the target ({cfg.operator}, tau={cfg.tau}, gamma={cfg.gamma}) "
                f"on {cfg.env.id}: {self.truth.fixed.reason}; exact/*_fixed_point is not logged"
            )

    def observe(self, obs: np.ndarray, action: int) -> None:
        """Count a training step's (s, a) for the `_visited` exact errors."""
        if self.truth is not None:
            self.truth.visit(obs, action)

    def _policy(self, state: Any, tau: float) -> episodes.BatchPolicy:
        """The greedy (τ = 0) or Boltzmann(q/τ) policy of `state`."""

        def act(obs: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
            actions, q, self._key = self._act(state, obs, self._key, 0.0, tau, mask)
            return np.asarray(actions), np.asarray(q)

        return act

    def _seeds(self, offset: int) -> list[int] | None:
        """Seed the eval envs on the first evaluation only; later ones continue their streams."""
        n, base = len(self.greedy_envs), self.cfg.seed + self.cfg.eval.seed + offset
        return [base + i for i in range(n)] if self._first else None

    def __call__(self, state: Any) -> dict[str, float]:
        cfg = self.cfg

        def q_fn(obs: np.ndarray) -> np.ndarray:
            return np.asarray(self._q_act(state, obs))

        greedy = episodes.run_episodes(self.greedy_envs, self._policy(state, 0.0), self._seeds(0))
        record = episodes.summarize_returns(greedy)
        target = greedy
        if self.target_envs:
            target = episodes.run_episodes(
                self.target_envs, self._policy(state, cfg.tau), self._seeds(len(self.greedy_envs))
            )
            record.update(episodes.summarize_returns(target, prefix="eval/target_"))
        operator_value = exact.get_operator(cfg.operator)
        record.update(monte_carlo.monte_carlo(target, q_fn, cfg.gamma, cfg.tau, operator_value))
        if self.truth is not None:
            record.update(self.truth.errors(q_fn(np.eye(self.truth.n_states, dtype=np.float32))))
        self._first = False
        return record

    def close(self) -> None:
        for env in [*self.greedy_envs, *self.target_envs]:
            env.close()
