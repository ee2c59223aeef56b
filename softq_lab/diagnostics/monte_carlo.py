"""Monte-Carlo over-estimation diagnostics that separate a soft learner's designed offset from real bias.

A soft learner's q sits above hard values by design (τ·logsumexp ≥ max: its fixed point carries the
policy's entropy bonus), so every estimate is compared with two truths:

Monte-Carlo (van Hasselt et al. 2016 style), on evaluation episodes of the *target* policy π
(greedy at τ = 0, softmax(q/τ) for τ > 0). For each visited (s_t, a_t) of an episode of length T:

    hard return   G_t     = Σ_{k≥0} γ^k r_{t+k}
    soft return   G^τ_t   = G_t + τ·Σ_{k≥1} γ^k H(π(·|s_{t+k}))
    bias = mean(q̂(s_t,a_t) − G_t),  mae = mean|q̂ − G_t|,  bias_norm = bias / mean|G_t| (if ≠ 0)

A time limit censors a return: for a truncated episode the tail beyond s_T is bootstrapped with the
learner's own value there, γ^{T−t}·V(s_T), with V = op_τ(q̂(s_T,·)) for the soft return and
V − τ·H(π(·|s_T)) = E_π q̂(s_T,·) for the hard one (so steps near the limit are partly self-referential;
steps far from it are not: the weight is γ^{T−t}).

The exact counterpart on tabular envs is `exact_truth.ExactTruth`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from softq_lab.diagnostics import exact
from softq_lab.diagnostics.episodes import Episode

QFunction = Callable[[np.ndarray], np.ndarray]  # obs [B, d] -> q [B, A]


def _policy_entropy(q: np.ndarray, tau: float, mask: np.ndarray | None = None) -> np.ndarray:
    """H(π(·|s)) [...] of π = softmax(q/τ) over the valid actions (greedy, so 0, at τ = 0)."""
    return exact.entropy(exact.boltzmann_policy(q, tau, mask))


def returns_to_go(
    rewards: np.ndarray, entropies: np.ndarray, gamma: float, tau: float, tail: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """(G_t, G^τ_t) for t < T, given H(π(·|s_t)) for t < T and the (hard, soft) tail value at s_T."""
    hard, soft = np.zeros(len(rewards)), np.zeros(len(rewards))
    g, g_soft = tail
    h_next = 0.0  # the entropy bonus at s_{t+1} enters G^τ_t; at s_T it is inside the soft tail
    for t in reversed(range(len(rewards))):
        g = rewards[t] + gamma * g
        g_soft = rewards[t] + gamma * (tau * h_next + g_soft)
        hard[t], soft[t] = g, g_soft
        h_next = entropies[t]
    return hard, soft


def monte_carlo(
    episodes: Sequence[Episode],
    q_fn: QFunction | None,
    gamma: float,
    tau: float,
    operator_value: Callable,
) -> dict[str, float]:
    """Bias and error of q̂(s_t, a_t) against the realised hard and soft returns-to-go.

    `operator_value(q, tau, mask)` is the backup operator on valid actions (an `exact` operator)."""
    q_hat, g_hard, g_soft, starts = [], [], [], []
    for ep in episodes:
        q = np.stack(ep.q)
        known = len(ep.masks) == len(ep.q) and all(m is not None for m in ep.masks)
        masks = np.stack(ep.masks) if known else None
        entropies = _policy_entropy(q, tau, masks)
        tail = (0.0, 0.0)
        if ep.truncated and not ep.terminated:
            q_T = ep.final_q if ep.final_q is not None else q_fn(ep.final_obs[None])[0]
            h_T = _policy_entropy(q_T, tau, ep.final_mask)
            v_T = float(operator_value(q_T, tau, ep.final_mask))
            tail = (v_T - tau * float(h_T), v_T)
        hard, soft = returns_to_go(np.asarray(ep.rewards), entropies, gamma, tau, tail)
        taken = q[np.arange(len(ep.actions)), ep.actions]
        q_hat.append(taken)
        g_hard.append(hard)
        g_soft.append(soft)
        starts.append((taken[0], hard[0], soft[0]))
    q_hat, g_hard, g_soft = (np.concatenate(x) for x in (q_hat, g_hard, g_soft))
    start = np.mean(starts, axis=0)
    out = {
        "overestimation/q_start": start[0],
        "overestimation/return_start_hard": start[1],
        "overestimation/return_start_soft": start[2],
    }
    for name, g in (("hard", g_hard), ("soft", g_soft)):
        bias = float(np.mean(q_hat - g))
        out[f"overestimation/bias_{name}"] = bias
        out[f"overestimation/mae_{name}"] = float(np.mean(np.abs(q_hat - g)))
        scale = float(np.mean(np.abs(g)))
        if scale > 1e-8:  # undefined (and left out) when every return is 0
            out[f"overestimation/bias_{name}_norm"] = bias / scale
    return {k: float(v) for k, v in out.items()}
