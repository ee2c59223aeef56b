"""An independent reference for Figure 6.5: the book's tabular Q-learning and Double Q-learning on
the MaxBias MDP, written from Sutton & Barto's pseudo-code in plain numpy (no softq_lab code).

Per episode: at A act ε-greedily on Q (Q1 + Q2 for Double Q-learning; greedy ties broken at random);
right ends the episode with reward 0; left moves to B with reward 0, then one action at B ends it
with reward ~ N(−0.1, 1). Each step updates Q(S, A) += α·(R + max_a Q(S', a) − Q(S, A)) (γ = 1; 0
after a terminal step); Double Q-learning updates Q1 or Q2 by a fair coin, the other evaluating the
updated one's argmax (ties at random). Runs are vectorised: every array has a leading run axis.

    python experiments/maxbias_reference.py --runs 1000     # prints the % left per 6-episode bin
"""

from __future__ import annotations

import argparse

import numpy as np

A, B = 0, 1
LEFT, RIGHT = 0, 1


def _argmax_random(q: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per row of q [R, K], an index of a maximum chosen uniformly among ties."""
    is_max = q == q.max(axis=1, keepdims=True)
    u = rng.random(q.shape) * is_max
    return u.argmax(axis=1)


def _epsilon_greedy(q: np.ndarray, eps: float, rng: np.random.Generator) -> np.ndarray:
    explore = rng.random(q.shape[0]) < eps
    return np.where(explore, rng.integers(q.shape[1], size=q.shape[0]), _argmax_random(q, rng))


def left_fractions(runs: int, episodes: int = 300, n_b: int = 10, eps: float = 0.1,
                   alpha: float = 0.1, double: bool = False, seed: int = 0) -> np.ndarray:
    """[runs, episodes]: 1.0 where that episode went left from A."""
    rng = np.random.default_rng(seed)
    n_tables = 2 if double else 1
    q_a = np.zeros((n_tables, runs, 2))
    q_b = np.zeros((n_tables, runs, n_b))
    rows = np.arange(runs)
    left = np.zeros((runs, episodes))
    for episode in range(episodes):
        a = _epsilon_greedy(q_a.sum(axis=0), eps, rng)
        went_left = a == LEFT
        left[:, episode] = went_left
        # step at A: target 0 when right (terminal); max over B when left
        i = rng.integers(n_tables, size=runs)  # the table that learns (always 0 without double)
        if double:
            choice = _argmax_random(q_b[i, rows], rng)
            v_b = q_b[1 - i, rows, choice]
        else:
            v_b = q_b[0].max(axis=1)
        target = np.where(went_left, v_b, 0.0)
        q_a[i, rows, a] += alpha * (target - q_a[i, rows, a])
        # step at B (left runs only): terminal, reward ~ N(−0.1, 1)
        b = _epsilon_greedy(q_b.sum(axis=0), eps, rng)
        reward = rng.normal(-0.1, 1.0, size=runs)
        j = rng.integers(n_tables, size=runs)
        step = alpha * (reward - q_b[j, rows, b])
        q_b[j, rows, b] += np.where(went_left, step, 0.0)
    return left


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    for double in (False, True):
        left = left_fractions(args.runs, double=double).mean(axis=0)
        bins = left.reshape(-1, 6).mean(axis=1)
        print("Double Q-learning" if double else "Q-learning", np.round(100 * bins, 1).tolist())


if __name__ == "__main__":
    main()
