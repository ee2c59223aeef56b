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
from softq_lab.envs import snapshot
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
        def q_fn(obs: np.ndarray) -> np.ndarray:
            return np.asarray(self._q_act(state, obs))

        greedy = episodes.run_episodes(self.greedy_envs, self._policy(state, 0.0), self._seeds(0))
        target = None
        if self.target_envs:
            target = episodes.run_episodes(
                self.target_envs,
                self._policy(state, self.cfg.tau),
                self._seeds(len(self.greedy_envs)),
            )
        q_table = None
        if self.truth is not None:
            q_table = q_fn(np.eye(self.truth.n_states, dtype=np.float32))
        self._first = False
        return evaluation_record(self.cfg, greedy, target, q_fn, self.truth, q_table)

    def snapshot(self) -> dict[str, Any]:
        """What the evaluator carries from one evaluation to the next, as JSON (for checkpoints):
        its key, whether it has seeded its envs, their random streams, the visit counts."""
        return {
            "key": np.asarray(jax.random.key_data(self._key)).tolist(),
            "first": self._first,
            "envs": [snapshot.capture(env) for env in [*self.greedy_envs, *self.target_envs]],
            "visits": None if self.truth is None else self.truth.visits.tolist(),
        }

    def restore(self, saved: dict[str, Any]) -> None:
        self._key = jax.random.wrap_key_data(np.asarray(saved["key"], np.uint32))
        self._first = saved["first"]
        for env, env_state in zip([*self.greedy_envs, *self.target_envs], saved["envs"], strict=True):
            if env_state is None:  # an env that cannot be restored: seed them afresh next time
                self._first = True
            else:
                snapshot.restore(env, env_state)
        if self.truth is not None:
            self.truth.visits = np.asarray(saved["visits"], np.int64)

    def close(self) -> None:
        for env in [*self.greedy_envs, *self.target_envs]:
            env.close()


def evaluation_record(
    cfg: RunConfig,
    greedy: list[episodes.Episode],
    target: list[episodes.Episode] | None,
    q_fn: monte_carlo.QFunction | None,
    truth: exact_truth.ExactTruth | None,
    q_table: np.ndarray | None,
) -> dict[str, float]:
    """One evaluation's record, whichever driver ran the episodes: the greedy return, the target
    policy's return (`target`: its episodes, None when they are the greedy ones), the Monte-Carlo
    diagnostics on the target episodes and, on a tabular env, the exact errors of `q_table` [S, A]."""
    record = episodes.summarize_returns(greedy)
    if target is not None:
        record.update(episodes.summarize_returns(target, prefix="eval/target_"))
    operator_value = exact.get_operator(cfg.operator)
    record.update(
        monte_carlo.monte_carlo(target or greedy, q_fn, cfg.gamma, cfg.tau, operator_value)
    )
    if truth is not None and q_table is not None:
        record.update(truth.errors(q_table))
    return record
