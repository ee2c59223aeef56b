"""A gymnasium env's state as JSON, for checkpoints: `capture(env)` and `restore(env, snapshot)`.

What is captured: the unwrapped env's plain attributes (numbers, booleans, None, numeric numpy
arrays and scalars, lists of numbers: e.g. CartPole's `state` and `steps_beyond_terminated`,
FrozenLake's `s` and `lastaction`, MaxBias's `s`), its random generator's exact state, and the
wrappers' plain attributes (`TimeLimit`'s step count, the order and API checkers' flags). Floats go
through JSON exactly (float64 repr round-trips), so a restored env continues bit for bit.

That is all the state of gymnasium's classic-control and toy-text envs and of this package's envs
(`RESTORABLE`); an env from elsewhere may hold state of other kinds (a physics engine, a
simulator handle), so `capture` returns None for it and the resumed run starts a new episode.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

# Modules whose envs keep all their state in plain attributes (checked: classic control, toy text).
RESTORABLE = ("gymnasium.envs.classic_control", "gymnasium.envs.toy_text", "softq_lab.envs")
_SCALARS = (bool, int, float, type(None))


def restorable(env: gym.Env) -> bool:
    return type(env.unwrapped).__module__.startswith(RESTORABLE)


def _encode(value: Any) -> Any:
    """A JSON form of a plain value, or `_SKIP` for anything else."""
    if isinstance(value, _SCALARS):
        return {"py": value}
    if isinstance(value, np.generic | np.ndarray) and value.dtype.kind in "biuf":
        return {"dtype": value.dtype.str, "shape": list(np.shape(value)), "v": np.ravel(value).tolist()}
    if isinstance(value, list | tuple) and all(isinstance(v, _SCALARS) for v in value):
        return {"list": list(value), "tuple": isinstance(value, tuple)}
    return _SKIP


_SKIP = object()


def _decode(record: dict[str, Any]) -> Any:
    if "py" in record:
        return record["py"]
    if "list" in record:
        return tuple(record["list"]) if record["tuple"] else list(record["list"])
    array = np.asarray(record["v"], dtype=np.dtype(record["dtype"])).reshape(record["shape"])
    return array if record["shape"] else array[()]


def _layers(env: gym.Env) -> list[gym.Env]:
    layers = [env]
    while isinstance(layers[-1], gym.Wrapper):
        layers.append(layers[-1].env)
    return layers


def capture(env: gym.Env) -> dict[str, Any] | None:
    """The env's state as a JSON-ready dict, or None when its kind of env is not `restorable`."""
    if not restorable(env):
        return None
    base = env.unwrapped
    attrs = {}
    for name, value in vars(base).items():
        encoded = _encode(value)
        if encoded is not _SKIP and not name.startswith("_np_random"):
            attrs[name] = encoded
    rng = base._np_random  # None until the first reset
    return {
        "attrs": attrs,
        "rng": None if rng is None else rng.bit_generator.state,
        "rng_seed": getattr(base, "_np_random_seed", None),
        "wrappers": [_plain_attrs(layer) for layer in _layers(env)[:-1]],
    }


def _plain_attrs(layer: gym.Wrapper) -> dict[str, Any]:
    return {k: v for k, v in vars(layer).items() if isinstance(v, bool | int | type(None))}


def restore(env: gym.Env, snapshot: dict[str, Any]) -> None:
    """Put `env` (made from the same config) into the captured state."""
    base = env.unwrapped
    for name, record in snapshot["attrs"].items():
        setattr(base, name, _decode(record))
    if snapshot["rng"] is not None:
        kind = getattr(np.random, snapshot["rng"]["bit_generator"])
        generator = np.random.Generator(kind())
        generator.bit_generator.state = snapshot["rng"]
        base._np_random = generator
        base._np_random_seed = snapshot["rng_seed"]
    for layer, attrs in zip(_layers(env)[:-1], snapshot["wrappers"], strict=True):
        for name, value in attrs.items():
            setattr(layer, name, value)
