"""Sutton & Barto's maximization-bias MDP (Reinforcement Learning, 2nd ed., Example 6.7).

    B  <--left (r = 0)--  A  --right (r = 0)-->  terminal
    B  --any of n_b_actions (r ~ N(mean, std²))-->  terminal

States (the observation, `Discrete(3)`): 0 = A (start), 1 = B, 2 = the terminal state. Actions:
`Discrete(max(2, n_b_actions))`; in A only 0 (left) and 1 (right) are valid, in B the first
`n_b_actions` are (all of them unless n_b_actions = 1). The valid actions are reported in
`info["action_mask"]` (np.int8, length n_actions, as gymnasium's Taxi does) on reset and on every
step; the terminal state's mask is all ones (no action is taken there, but a max over its masked
values stays finite). Taking an invalid action raises ValueError.

The expected return of left is γ·mean < 0 = the return of right, so Q*(A, left) = γ·mean,
Q*(A, right) = 0, Q*(B, ·) = mean (−0.1 by default; the book uses γ = 1). A learner that maximises
over noisy estimates of Q(B, ·) over-estimates V(B) and goes left too often: the step that ends an
episode reports `info["metrics"] = {"maxbias/left": 1.0 if the episode went left from A else 0.0}`.

The model `self.P` is in gymnasium's toy-text format, `P[s][a] = [(prob, next_s, reward,
terminated)]`, with B's rewards at their mean. An invalid action is modelled as
`(1.0, terminal, -inf, True)`: worth −∞, so that a max, log-sum-exp or softmax over all of a state's
actions ignores it exactly as if it were absent, and any use that does not exclude it fails loudly
rather than quietly. Mean-based operators (mellowmax's 1/|A|) must still exclude it explicitly:
`self.valid_actions` ([3, n_actions] bool) is the mask, which `softq_lab.diagnostics.exact.tabular_mdp` reads.

For the table-driven JAX env built from the model (`softq_lab.envs.tabular`), the env also declares
what P does not say: `self.reward_std` ([3, n_actions]: `std` at B's valid actions, 0 elsewhere; the
noise around P's mean rewards), `self.episode_flags = {"maxbias/left": B}` (the metric is 1.0 exactly
when the episode visited B, which is when it went left from A) and `self.max_episode_length = 2`
(every episode ends within two steps, so the env needs no time limit).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

STATE_A, STATE_B, TERMINAL = 0, 1, 2
LEFT, RIGHT = 0, 1
BOOK_GAMMA = 1.0  # the discount of Sutton & Barto's Example 6.7

Transition = tuple[float, int, float, bool]


class MaxBiasEnv(gym.Env[int, int]):
    """The maximization-bias MDP; see the module docstring."""

    metadata: dict[str, Any] = {"render_modes": ["ansi"], "render_fps": 4}  # noqa: RUF012

    def __init__(
        self,
        n_b_actions: int = 10,
        mean: float = -0.1,
        std: float = 1.0,
        render_mode: str | None = None,
    ) -> None:
        if int(n_b_actions) != n_b_actions or n_b_actions < 1:
            raise ValueError(f"n_b_actions must be an integer >= 1, got {n_b_actions}")
        if not np.isfinite(mean) or not (np.isfinite(std) and std >= 0):
            raise ValueError(f"need a finite mean and a finite std >= 0, got {mean=}, {std=}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r}: must be None or 'ansi'")
        self.n_b_actions = int(n_b_actions)
        self.mean = float(mean)
        self.std = float(std)
        self.render_mode = render_mode
        self.n_actions = max(2, self.n_b_actions)
        self.observation_space = spaces.Discrete(3)
        self.action_space = spaces.Discrete(self.n_actions)

        valid = np.zeros((3, self.n_actions), dtype=bool)
        valid[STATE_A, [LEFT, RIGHT]] = True
        valid[STATE_B, : self.n_b_actions] = True
        valid[TERMINAL, :] = True
        valid.setflags(write=False)
        self.valid_actions = valid
        self.initial_state_distrib = np.array([1.0, 0.0, 0.0])
        # What the model P (mean rewards) does not say, for table-driven envs (`envs.tabular`):
        self.reward_std = np.where(valid & (np.arange(3) == STATE_B)[:, None], self.std, 0.0)
        self.episode_flags = {"maxbias/left": STATE_B}  # 1.0 when the episode visited B
        self.max_episode_length = 2  # every episode ends within two steps
        self.P = self._model()
        self.s = STATE_A
        self._went_left = False

    def _model(self) -> dict[int, dict[int, list[Transition]]]:
        invalid: list[Transition] = [(1.0, TERMINAL, -np.inf, True)]
        model: dict[int, dict[int, list[Transition]]] = {s: {} for s in range(3)}
        for a in range(self.n_actions):
            if a == LEFT:
                model[STATE_A][a] = [(1.0, STATE_B, 0.0, False)]
            elif a == RIGHT:
                model[STATE_A][a] = [(1.0, TERMINAL, 0.0, True)]
            else:
                model[STATE_A][a] = list(invalid)
            valid_b = self.valid_actions[STATE_B, a]
            model[STATE_B][a] = [(1.0, TERMINAL, self.mean, True)] if valid_b else list(invalid)
            model[TERMINAL][a] = [(1.0, TERMINAL, 0.0, True)]
        return model

    def action_mask(self, state: int) -> np.ndarray:
        """np.int8 [n_actions]: 1 for the actions valid in `state`."""
        return self.valid_actions[state].astype(np.int8)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        self.s = STATE_A
        self._went_left = False
        return self.s, {"action_mask": self.action_mask(self.s)}

    def step(self, action: Any) -> tuple[int, float, bool, bool, dict[str, Any]]:
        a = int(action)
        if not self.action_space.contains(a):
            raise ValueError(f"action {action!r} is outside the action space {self.action_space}")
        if not self.valid_actions[self.s, a]:
            names = {STATE_A: "A (valid: 0 = left, 1 = right)", STATE_B: "B"}
            raise ValueError(
                f"action {a} is not valid in state {names[self.s]}; "
                f"sample from info['action_mask'] (here {self.action_mask(self.s).tolist()})"
            )
        info: dict[str, Any] = {}
        if self.s == STATE_A:
            if a == LEFT:
                self.s, reward, terminated = STATE_B, 0.0, False
                self._went_left = True
            else:
                self.s, reward, terminated = TERMINAL, 0.0, True
        elif self.s == STATE_B:
            reward = float(self.np_random.normal(self.mean, self.std))
            self.s, terminated = TERMINAL, True
        else:  # stepping on after the end: the model's absorbing terminal state
            return TERMINAL, 0.0, True, False, {"action_mask": self.action_mask(TERMINAL)}
        if terminated:
            info["metrics"] = {"maxbias/left": 1.0 if self._went_left else 0.0}
        info["action_mask"] = self.action_mask(self.s)
        if self.render_mode == "ansi":
            self.render()
        return self.s, reward, terminated, False, info

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        return ["[A] B", "A [B]", "A B [T]"][self.s] + "\n"
