"""Your own env: a module whose import registers it, named on the command line as `module:EnvId`.

    PYTHONPATH=examples softq-train env.id=my_envs:Corridor-v0 network=tabular gamma=0.9

`Corridor-v0` is a chain of `length` cells (default 6): the agent starts in cell 0, action 0 steps
left (or stays at the left wall), action 1 steps right; reaching the last cell ends the episode with
reward 1, every other step gives 0. Observations are the cell index (`Discrete(length)`: one-hot for
the learner). With γ < 1 the optimal policy always goes right: Q*(s, right) = γ^(length − 2 − s).

The env carries its model in toy-text form (`self.P[s][a] = [(prob, next_s, reward, terminated)]`),
as FrozenLake does, so it also gets softq-lab's exact diagnostics and a JAX version built from the
model (the device driver: `driver=device`, or any batched sweep). An env without `P` runs on the
host drivers.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium import spaces
from gymnasium.envs.registration import register, registry

LEFT, RIGHT = 0, 1


class CorridorEnv(gym.Env[int, int]):
    """A corridor of `length` cells; the episode ends, with reward 1, in the last one."""

    def __init__(self, length: int = 6) -> None:
        if int(length) != length or length < 2:
            raise ValueError(f"length must be an integer >= 2, got {length}")
        self.length = int(length)
        self.observation_space = spaces.Discrete(self.length)
        self.action_space = spaces.Discrete(2)
        goal = self.length - 1
        self.P = {
            s: {
                LEFT: [(1.0, max(s - 1, 0), 0.0, False)],
                RIGHT: [(1.0, s + 1, float(s + 1 == goal), s + 1 == goal)],
            }
            for s in range(goal)
        }
        self.P[goal] = {a: [(1.0, goal, 0.0, True)] for a in (LEFT, RIGHT)}  # absorbing
        self.initial_state_distrib = [1.0] + [0.0] * goal
        self.s = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        self.s = 0
        return self.s, {}

    def step(self, action: Any) -> tuple[int, float, bool, bool, dict[str, Any]]:
        ((_, self.s, reward, terminated),) = self.P[self.s][int(action)]
        return self.s, reward, terminated, False, {}


if "Corridor-v0" not in registry:
    register(id="Corridor-v0", entry_point=CorridorEnv, max_episode_steps=50)
