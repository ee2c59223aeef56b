"""Evaluation episodes: a fixed policy run on separate envs, in lockstep, with every step recorded.

The returned `Episode`s keep what the over-estimation diagnostics need (observations, actions,
rewards, the q-values seen, and whether the episode ended by termination or by a time limit).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np


@dataclass
class Episode:
    obs: list[np.ndarray] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    q: list[np.ndarray] = field(default_factory=list)  # q(s_t, ·) at each step
    masks: list[np.ndarray | None] = field(default_factory=list)  # valid actions at s_t, if known
    final_obs: np.ndarray | None = None  # s_T, the observation the episode ended in
    final_mask: np.ndarray | None = None  # valid actions at s_T, if known
    final_q: np.ndarray | None = None  # q(s_T, ·), when the runner computed it (else q_fn(s_T))
    terminated: bool = False  # False with `truncated` = the return is censored by a time limit
    truncated: bool = False

    @property
    def ret(self) -> float:
        return float(np.sum(self.rewards))

    @property
    def length(self) -> int:
        return len(self.rewards)


# (obs [E, d], action mask [E, A] or None) -> (actions [E], q [E, A])
BatchPolicy = Callable[[np.ndarray, np.ndarray | None], tuple[np.ndarray, np.ndarray]]


def run_episodes(
    envs: Sequence[gym.Env], policy: BatchPolicy, seeds: Sequence[int] | None
) -> list[Episode]:
    """One episode on each env, stepped together; `seeds` reseeds the envs' resets (None: continue)."""
    seeds = [None] * len(envs) if seeds is None else list(seeds)
    episodes = [Episode() for _ in envs]
    obs, masks = [], []
    for env, seed in zip(envs, seeds, strict=True):
        o, info = env.reset(seed=seed)
        obs.append(o)
        masks.append(info.get("action_mask"))
    live = list(range(len(envs)))
    while live:
        batch_masks = None if masks[live[0]] is None else np.stack([masks[i] for i in live])
        actions, q = policy(np.stack([obs[i] for i in live]), batch_masks)
        still = []
        for j, i in enumerate(live):
            ep, a = episodes[i], int(actions[j])
            ep.obs.append(obs[i])
            ep.actions.append(a)
            ep.q.append(np.asarray(q[j]))
            ep.masks.append(masks[i])
            obs[i], r, term, trunc, info = envs[i].step(a)
            masks[i] = info.get("action_mask")
            ep.rewards.append(float(r))
            if term or trunc:
                ep.terminated, ep.truncated, ep.final_obs = bool(term), bool(trunc), obs[i]
                ep.final_mask = masks[i]
            else:
                still.append(i)
        live = still
    return episodes


def summarize_returns(episodes: Sequence[Episode], prefix: str = "eval/") -> dict[str, float]:
    """Mean / std of the undiscounted return and mean length, as `<prefix>return_mean` etc."""
    returns = np.array([ep.ret for ep in episodes])
    lengths = np.array([ep.length for ep in episodes])
    return {
        f"{prefix}return_mean": float(returns.mean()),
        f"{prefix}return_std": float(returns.std()),
        f"{prefix}length_mean": float(lengths.mean()),
    }
