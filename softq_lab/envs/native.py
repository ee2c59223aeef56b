"""The pure JAX version of an env config, when there is one.

- CartPole-v1, Acrobot-v1, MountainCar-v0: ports of gymnasium's classic control (`classic_control`);
- any env with a tabular model (`env.unwrapped.P`: FrozenLake, CliffWalking, Taxi, MaxBias, a user's
  toy-text env): the table-driven env built from that model (`tabular`).

Anything else (Blackjack, LunarLander, a user's own env) has none, and `why_not` says why in one
line, for the notice of a driver that falls back to gymnasium.
"""

from __future__ import annotations

from softq_lab.envs import classic_control, tabular
from softq_lab.envs import make as make_gym
from softq_lab.envs.functional import JaxEnv
from softq_lab.run.config import EnvConfig


def make(cfg: EnvConfig) -> JaxEnv | None:
    """The JAX env of `cfg`, or None when it has no JAX version (see `lookup`)."""
    return lookup(cfg)[0]


def why_not(cfg: EnvConfig) -> str | None:
    """None when `cfg` has a JAX version, else the reason in a few words."""
    return lookup(cfg)[1]


def lookup(cfg: EnvConfig) -> tuple[JaxEnv | None, str | None]:
    """(the JAX env, None), or (None, why there is none)."""
    factory = classic_control.ENVS.get(cfg.id)
    if factory is not None:
        try:
            return factory(cfg.max_episode_steps, **dict(cfg.kwargs)), None
        except TypeError as err:
            return None, f"its JAX port does not take these kwargs ({err})"
    env = make_gym.make(cfg)  # raises ConfigError for an unknown id or bad kwargs
    try:
        if hasattr(env.unwrapped, "P"):
            try:
                return tabular.from_gym(env, cfg.id, cfg.max_episode_steps), None
            except ValueError as err:
                return None, str(err)
        return None, "no JAX port and no tabular model (env.unwrapped.P)"
    finally:
        env.close()
