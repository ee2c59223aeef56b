"""Gymnasium envs as the learner sees them: discrete actions, flat float32 observations.

Box observations are flattened; Discrete (and Tuple/MultiDiscrete) ones become one-hot vectors, so the
toy-text envs (FrozenLake, CliffWalking, Taxi) work with any network and the `tabular` network is a
lookup table. (Importing this module imports `softq_lab.envs`, which registers MaxBias-v0.)
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import FlattenObservation

from softq_lab.run.config import ConfigError, EnvConfig, first_line, import_module, one_line


class Float32Observation(gym.ObservationWrapper):
    """Cast observations to float32 (one-hot vectors from FlattenObservation are int64)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        space = env.observation_space
        self.observation_space = gym.spaces.Box(
            space.low.astype(np.float32), space.high.astype(np.float32), dtype=np.float32
        )

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.asarray(observation, np.float32)


def check_id(env_id: str) -> None:
    """Raise ConfigError unless `env_id` is a registered gymnasium id, or `module:EnvId` (as
    `gym.make` takes it) whose module imports and registers EnvId."""
    module, colon, name = env_id.rpartition(":")
    if colon and (not module or ":" in module):
        raise ConfigError(
            f"env.id={env_id!r}: must be a gymnasium id (CartPole-v1) or module:EnvId "
            "(my_envs:Corridor-v0)"
        )
    if colon:
        import_module("env.id", env_id, module)  # its import registers the env
    try:
        gym.spec(name)
    except gym.error.Error as err:
        if colon:
            raise ConfigError(
                f"env.id={env_id!r}: module {module} imports but does not register {name} "
                "(gymnasium.register(id=..., entry_point=...) at its top level)"
            ) from None
        raise ConfigError(
            f"env.id={env_id!r}: not a registered gymnasium id ({err}); "
            "e.g. CartPole-v1, Acrobot-v1, FrozenLake-v1, MaxBias-v0, or my_envs:Corridor-v0"
        ) from None


def is_discrete(space: gym.Space) -> bool:
    """Whether `space` has finitely many points (Discrete, MultiDiscrete, or tuples of them)."""
    if isinstance(space, gym.spaces.Tuple):
        return all(is_discrete(s) for s in space.spaces)
    return isinstance(space, gym.spaces.Discrete | gym.spaces.MultiDiscrete)


def _env_error(err: Exception) -> str:
    """The env's own message; a KeyError's (the bad key alone) with its type."""
    return one_line(err) if isinstance(err, KeyError) else first_line(err)


def make(cfg: EnvConfig) -> gym.Env:
    """A new env for `cfg`; ConfigError for unknown ids, bad kwargs or non-discrete actions."""
    check_id(cfg.id)
    extra = {} if cfg.max_episode_steps is None else {"max_episode_steps": cfg.max_episode_steps}
    try:
        env = gym.make(cfg.id, **dict(cfg.kwargs), **extra)
    except gym.error.Error as err:  # e.g. DependencyNotInstalled (Box2D envs)
        raise ConfigError(f"env.id={cfg.id!r}: cannot be made here: {_env_error(err)}") from None
    except (TypeError, ValueError, KeyError, IndexError) as err:  # the env's own check of a kwarg
        raise ConfigError(
            f"env.kwargs={dict(cfg.kwargs)!r}: not accepted by {cfg.id}: {_env_error(err)}"
        ) from None
    if not isinstance(env.action_space, gym.spaces.Discrete):
        env.close()
        raise ConfigError(
            f"env.id={cfg.id!r}: action space {env.action_space} is not Discrete; "
            "softq-lab needs discrete actions"
        )
    if (
        not isinstance(env.observation_space, gym.spaces.Box)
        or len(env.observation_space.shape) != 1
    ):
        env = FlattenObservation(env)
    return Float32Observation(env)
