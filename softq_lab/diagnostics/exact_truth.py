"""Exact over-estimation diagnostics on a tabular env.

Exact (tabular envs with a known model, `env.unwrapped.P`): the learned table q̂(s, a) against
Q* (hard value iteration), the fixed point of the target in use (operator, τ, n-step, entropy bonus;
see `exact.fixed_point`) and the value of the current target policy, over all valid (s, a) of the
states in play (reachable without terminating) and over the pairs the run has visited.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from softq_lab.diagnostics import exact


def states_in_play(mdp: exact.TabularMDP) -> np.ndarray:
    """[S] bool: states an episode can be in when acting (the start states and every state reached
    by a non-terminating transition); terminal states such as FrozenLake's holes are not."""
    start = mdp.initial > 0 if mdp.initial is not None else np.ones(mdp.n_states, bool)
    reach = start.copy()
    step = mdp.p.sum(axis=1) > 0  # [S, S']: s' reachable from s without terminating
    while True:
        new = reach | step[reach].any(axis=0)
        if np.array_equal(new, reach):
            return reach
        reach = new


class ExactTruth:
    """Exact values of a tabular env, computed once per run, and the learned table's errors."""

    def __init__(
        self, env: Any, gamma: float, tau: float, operator: str, n_step: int, entropy_bonus: bool
    ) -> None:
        self.mdp = exact.tabular_mdp(env)
        self.gamma, self.tau = gamma, tau
        self.qstar = exact.fixed_point(self.mdp, gamma, 0.0, "hard")
        self.fixed = exact.fixed_point(self.mdp, gamma, tau, operator, n_step, entropy_bonus)
        self.pairs = states_in_play(self.mdp)[:, None] & self.mdp.mask
        self.visits = np.zeros(self.mdp.p.shape[:2], np.int64)

    @classmethod
    def maybe(cls, env: Any, **kwargs: Any) -> ExactTruth | None:
        """The exact truth when the env exposes its model (`env.unwrapped.P`), else None."""
        return cls(env, **kwargs) if hasattr(env.unwrapped, "P") else None

    @property
    def n_states(self) -> int:
        return self.mdp.n_states

    def visit(self, obs: np.ndarray, action: int) -> None:
        self.visits[int(np.argmax(obs)), action] += 1

    def errors(self, q_hat: np.ndarray) -> dict[str, float]:
        """Bias and MAE of q̂ [S, A] against Q*, the target's fixed point and the current policy."""
        out: dict[str, float] = {"exact/converged": float(self.fixed.converged)}
        pi = exact.boltzmann_policy(q_hat, self.tau, self.mdp.mask)
        policy = exact.policy_q(self.mdp, pi, self.gamma, self.tau)
        truths = {"qstar": self.qstar, "fixed_point": self.fixed, "policy": policy}
        for name, solution in truths.items():
            if not solution.converged:
                continue
            for suffix, pairs in (("", self.pairs), ("_visited", self.pairs & (self.visits > 0))):
                if pairs.any():
                    diff = q_hat[pairs] - solution.q[pairs]
                    out[f"exact/bias_{name}{suffix}"] = float(diff.mean())
                    out[f"exact/mae_{name}{suffix}"] = float(np.abs(diff).mean())
        out["exact/q_mean"] = float(q_hat[self.pairs].mean())
        if self.qstar.converged:
            out["exact/qstar_mean"] = float(self.qstar.q[self.pairs].mean())
        return out
