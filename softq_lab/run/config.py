"""The run's typed config: built from Hydra's DictConfig at the edge, validated before anything runs.

Every user mistake becomes one `ConfigError` whose message names the key, the value and what is
allowed, e.g. `tau=-1.0: must be a finite number >= 0`. Deeper code sees only these frozen dataclasses.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import optax

from softq_lab.core import networks, operators
from softq_lab.core.learner import DOUBLE_MODES

# auto: the host driver for a single run; in a batched sweep the device driver where the env has a
# JAX version. host / device: always that driver (device needs a JAX version of the env).
DRIVERS = ("auto", "host", "device")


class ConfigError(ValueError):
    """A config value a run cannot use; the message is the one line shown to the user."""


@dataclass(frozen=True)
class EnvConfig:
    id: str
    name: str
    kwargs: tuple[tuple[str, Any], ...] = ()
    max_episode_steps: int | None = None


@dataclass(frozen=True)
class ExplorationConfig:
    eps_start: float = 1.0
    eps_end: float = 0.01
    eps_decay_steps: int = 10_000
    tau: float | None = None  # None: the learner's tau


@dataclass(frozen=True)
class EvalConfig:
    every: int = 10_000
    episodes: int = 10
    seed: int = 10_000
    diagnostics_policy: str = "target"  # target (Boltzmann for τ > 0) | greedy


@dataclass(frozen=True)
class WandbConfig:
    mode: str = "offline"
    project: str = "softq-lab"
    entity: str | None = None
    group: str | None = None
    tags: tuple[str, ...] = ()
    name: str | None = None  # set per job from its overrides (`train.prepare`), not configured


@dataclass(frozen=True)
class LoggerConfig:
    every: int = 1000
    progress: str = "auto"
    wandb: WandbConfig = field(default_factory=WandbConfig)


@dataclass(frozen=True)
class CheckpointConfig:
    every: int = 0  # env steps between checkpoints; 0: only when a stop signal arrives
    keep: int = 2


@dataclass(frozen=True)
class RunConfig:
    env: EnvConfig
    network: networks.NetworkSpec
    network_name: str
    seed: int
    total_steps: int
    total_episodes: int | None  # stop after this many training episodes (None: total_steps only)
    driver: str  # auto | host | device (see DRIVERS)
    n_step: int
    gamma: float
    tau: float
    operator: str
    double: str  # none | target | twin
    entropy_bonus: bool
    lr: float
    lr_schedule: str
    batch_size: int
    loss: str
    buffer_capacity: int
    learning_starts: int
    train_every: int
    train_updates: int
    polyak: float
    target_period: int
    optimizer: str
    optimizer_kwargs: tuple[tuple[str, Any], ...]
    max_grad_norm: float | None
    exploration: ExplorationConfig
    eval: EvalConfig
    logger: LoggerConfig
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    resume: bool = False  # continue the run dir's run from its last checkpoint

    def lr_at(self, step: int) -> float:
        """The learning rate after `step` env steps under `lr_schedule`."""
        if self.lr_schedule == "linear":
            return self.lr * max(0.0, 1.0 - step / self.total_steps)
        return self.lr

    @property
    def behaviour_tau(self) -> float:
        """τ_π of the behaviour policy: its own if set, else the learner's τ."""
        return self.tau if self.exploration.tau is None else self.exploration.tau


# --- checks: each returns the value or raises ConfigError naming key, value and what is allowed ---


def first_line(err: BaseException) -> str:
    """The first line of `err`'s message, or its type's name when it has none."""
    text = str(err).splitlines()[0] if str(err) else ""
    return text or type(err).__name__


def one_line(err: BaseException) -> str:
    """`err` as `Type: first line of its message` (`Type` alone when it has none), for a one-line
    error."""
    text = first_line(err)
    return text if text == type(err).__name__ else f"{type(err).__name__}: {text}"


def import_module(key: str, value: str, module: str) -> ModuleType:
    """The user's module `module` (named in `key=value`: an env id or a network target), imported;
    ConfigError if importing it fails in any way."""
    try:
        return importlib.import_module(module)
    except Exception as err:  # ModuleNotFoundError, or whatever the module's own code raises
        raise ConfigError(f"{key}={value!r}: cannot import module {module} ({one_line(err)})") from None


def _number(
    key: str, value: Any, lo: float | None = None, hi: float | None = None, lo_open: bool = False
) -> float:
    bounds = []
    if lo is not None:
        bounds.append(f"{'>' if lo_open else '>='} {lo:g}")
    if hi is not None:
        bounds.append(f"<= {hi:g}")
    allowed = "a finite number" + (" " + " and ".join(bounds) if bounds else "")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{key}={value!r}: must be {allowed}")
    if (lo is not None and (value <= lo if lo_open else value < lo)) or (
        hi is not None and value > hi
    ):
        raise ConfigError(f"{key}={value!r}: must be {allowed}")
    return float(value)


def _integer(key: str, value: Any, lo: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ConfigError(f"{key}={value!r}: must be an integer >= {lo}")
    return int(value)


def _choice(key: str, value: Any, allowed: tuple[str, ...] | list[str]) -> str:
    if value not in allowed:
        raise ConfigError(f"{key}={value!r}: must be one of {', '.join(map(str, allowed))}")
    return value


def _flag(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}={value!r}: must be true or false")
    return value


def _mapping(key: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}={value!r}: must be a mapping, e.g. {{name: value}}")
    return dict(value)


# (optim.name, repr of its sorted kwargs) -> whether one update is finite: a sweep's jobs share a few
# settings, and each check compiles a small program (~0.06 s a job otherwise)
OPTIMIZERS_CHECKED: dict[tuple[str, str], bool] = {}


def _optimizer(name: Any, kwargs: dict[str, Any]) -> str:
    factory = getattr(optax, name, None) if isinstance(name, str) else None
    if not callable(factory):
        raise ConfigError(
            f"optim.name={name!r}: must be an optax optimizer alias, e.g. adam, adamw, sgd, rmsprop"
        )
    checked = (name, repr(sorted(kwargs.items())))
    if checked not in OPTIMIZERS_CHECKED:
        OPTIMIZERS_CHECKED[checked] = _updates_finite(name, factory, kwargs)
    if not OPTIMIZERS_CHECKED[checked]:
        raise ConfigError(f"optim.kwargs={kwargs!r}: optax.{name} makes non-finite updates with them")
    return name


def _updates_finite(name: str, factory: Any, kwargs: dict[str, Any]) -> bool:
    """One update of a tiny tree: a wrong kind of value (`b1=abc`) fails here, not mid-run."""
    try:
        optimizer = factory(learning_rate=1.0, **kwargs)

        def all_finite(params: dict[str, jax.Array]) -> jax.Array:
            updates, _ = optimizer.update(params, optimizer.init(params), params)
            return jnp.all(jnp.stack([jnp.isfinite(u).all() for u in jax.tree.leaves(updates)]))

        # jitted: one small program instead of ~30 eagerly compiled ops (0.5 s → 0.05 s)
        return bool(jax.jit(all_finite)({"w": jnp.ones(2)}))
    except Exception as err:  # optax and JAX raise TypeError, ValueError, ... for a bad value
        raise ConfigError(
            f"optim.kwargs={kwargs!r}: not accepted by optax.{name}: {first_line(err)}"
        ) from None


def from_dict(cfg: Mapping[str, Any]) -> RunConfig:
    """Validate a resolved config (plain nested dicts) and return its typed form."""
    try:
        return _from_dict(cfg)
    except KeyError as err:  # e.g. a key deleted with `~key` on the command line
        raise ConfigError(
            f"{err.args[0]}: missing from the config (see conf/config.yaml)"
        ) from None
    except (TypeError, AttributeError) as err:  # e.g. `buffer=5` where a mapping belongs
        raise ConfigError(f"config has a value of the wrong kind: {err}") from None


SECTIONS = ("env", "network", "buffer", "train", "target", "optim", "exploration", "eval", "logger")


def _checkpoint(ckpt: Mapping[str, Any], total_steps: int, log_every: int) -> CheckpointConfig:
    """`checkpoint.every: null` is a few per run: about a quarter of the run, rounded up to a
    multiple of `logger.every`."""
    every = ckpt.get("every")
    if every is None:
        quarter = -(-total_steps // 4)
        every = -(-quarter // log_every) * log_every
    return CheckpointConfig(
        every=_integer("checkpoint.every", every, lo=0),
        keep=_integer("checkpoint.keep", ckpt.get("keep", 2)),
    )


def _frozen(key: str, value: Any) -> Any:
    """`value` with lists as tuples (a network's kwargs are part of its hashable spec)."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(key, v) for v in value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ConfigError(f"{key}={value!r}: must be a number, string, boolean, null or a list of them")


def _network(net: Mapping[str, Any]) -> networks.NetworkSpec:
    """The MLP of network=type1/type2/tabular, or the user's module of network=custom (a `target`
    key; `check_network` tries it once the env's shapes are known)."""
    kind = int(_choice("network.type", net["type"], (1, 2)))
    if "target" in net:
        target = net["target"]
        module, name = networks.split_target(target) if isinstance(target, str) else ("", "")
        if not (module and name):
            raise ConfigError(
                f"network.target={target!r}: must name your network's factory as "
                "pkg.module:make_q (a function or flax module class that returns a flax nn.Module)"
            )
        kwargs = _mapping("network.kwargs", net.get("kwargs"))
        if "n_actions" in kwargs:
            raise ConfigError(
                f"network.kwargs.n_actions={kwargs['n_actions']!r}: set by the env, not here"
            )
        frozen = {k: _frozen(f"network.kwargs.{k}", v) for k, v in kwargs.items()}
        return networks.NetworkSpec(type=kind, target=target, kwargs=tuple(sorted(frozen.items())))
    hidden = net["hidden_sizes"]
    if not isinstance(hidden, list | tuple):
        raise ConfigError(f"network.hidden_sizes={hidden!r}: must be a list of integers >= 1")
    return networks.NetworkSpec(
        type=kind,
        hidden_sizes=tuple(_integer("network.hidden_sizes", h) for h in hidden),
        activation=_choice("network.activation", net["activation"], list(networks.ACTIVATIONS)),
        use_bias=_flag("network.use_bias", net["use_bias"]),
        init=_choice("network.init", net["init"], networks.INITS),
    )


def check_network(spec: networks.NetworkSpec, obs_shape: tuple[int, ...], n_actions: int) -> None:
    """Try a user's network (`spec.target`) on one observation of the env: ConfigError unless its
    module imports, its factory is callable and returns a flax module that keeps nothing but
    parameters (the drivers jit and vmap a pure `apply`), and its q has the shape of `spec.type`."""
    key = f"network.target={spec.target!r}"
    module_name, name = networks.split_target(spec.target or "")
    factory = getattr(import_module("network.target", spec.target or "", module_name), name, None)
    if factory is None:
        raise ConfigError(f"{key}: module {module_name} has no attribute {name}")
    if not callable(factory):
        raise ConfigError(
            f"{key}: {module_name}.{name} is not callable (a {type(factory).__name__}); "
            "it must return a flax nn.Module"
        )
    factory, kwargs = networks.custom_call(spec, n_actions)
    try:
        net = factory(**kwargs)
    except Exception as err:  # the user's code: any error
        call = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise ConfigError(f"{key}: {module_name}.{name}({call}) failed: {one_line(err)}") from None
    if not isinstance(net, networks.nn.Module):
        raise ConfigError(f"{key}: must return a flax nn.Module, got a {type(net).__name__}")
    obs = jnp.zeros((1, *obs_shape), jnp.float32)
    if spec.type == 2:  # q(s, ·) of one observation
        what, call, args = "q(s, ·)", "module(obs)", (obs,)
        shapes, wanted = [(1, n_actions)], f"[batch, n_actions] = [1, {n_actions}]"
    else:  # q(s, a) of one observation and the one-hot of action 0
        action = jax.nn.one_hot(jnp.zeros(1, jnp.int32), n_actions, dtype=jnp.float32)
        what, call, args = "q(s, a)", "module(obs, one-hot action)", (obs, action)
        shapes, wanted = [(1,), (1, 1)], "[batch] or [batch, 1] = [1] or [1, 1]"
    try:  # shapes only: nothing is computed
        q, variables = jax.eval_shape(net.init_with_output, jax.random.key(0), *args)
    except Exception as err:  # the user's code: any error
        inputs = " and ".join(str(list(a.shape)) for a in args)
        raise ConfigError(
            f"{key}: {what} = {call} (network.type={spec.type}) fails on inputs of shape "
            f"{inputs}: {one_line(err)}"
        ) from None
    state = sorted(set(variables) - {"params"})
    if state:
        raise ConfigError(
            f"{key}: the module keeps state outside its parameters ({', '.join(state)}); "
            "softq-lab trains pure modules (no BatchNorm statistics)"
        )
    if q.shape not in shapes:
        raise ConfigError(f"{key}: {what} must have shape {wanted}, got {list(q.shape)}")


def _from_dict(cfg: Mapping[str, Any]) -> RunConfig:
    for section in SECTIONS:
        if not isinstance(cfg[section], Mapping):
            raise ConfigError(f"{section}={cfg[section]!r}: must be a mapping of its keys")
    env, net, buf, train, target = (
        cfg["env"],
        cfg["network"],
        cfg["buffer"],
        cfg["train"],
        cfg["target"],
    )
    optim, explore, ev, log = cfg["optim"], cfg["exploration"], cfg["eval"], cfg["logger"]

    if not isinstance(env["id"], str) or not env["id"]:
        raise ConfigError(f"env.id={env['id']!r}: must be a gymnasium id, e.g. CartPole-v1")
    max_episode_steps = env.get("max_episode_steps")
    if max_episode_steps is not None:
        max_episode_steps = _integer("env.max_episode_steps", max_episode_steps)

    network = _network(net)

    operator = _choice("operator", cfg["operator"], [k for k in operators.OPERATORS if k != "hard"])
    double = cfg["double"]
    if isinstance(double, bool):  # `double=true` is Double DQN
        double = "target" if double else "none"
    double = _choice("double", double, DOUBLE_MODES)
    if double != "none" and operator not in ("soft", "boltzmann"):
        raise ConfigError(f"operator={operator!r}: double={double} supports soft and boltzmann")

    batch_size = _integer("batch_size", cfg["batch_size"])
    capacity = _integer("buffer.capacity", buf["capacity"])
    if batch_size > capacity:
        raise ConfigError(f"batch_size={batch_size}: must be <= buffer.capacity ({capacity})")
    n_step = _integer("n_step", cfg["n_step"])
    if n_step > capacity:  # n-step windows are cut from the buffer: n steps must fit in it
        raise ConfigError(f"n_step={n_step}: must be <= buffer.capacity ({capacity})")

    max_grad_norm = optim.get("max_grad_norm")
    if max_grad_norm is not None:
        max_grad_norm = _number("optim.max_grad_norm", max_grad_norm, lo=0, lo_open=True)
    optimizer_kwargs = _mapping("optim.kwargs", optim.get("kwargs"))

    wandb = log["wandb"]
    explore_tau = explore.get("tau")
    total_steps = _integer("total_steps", cfg["total_steps"])
    learning_starts = _integer("buffer.learning_starts", buf["learning_starts"], lo=0)
    if learning_starts >= total_steps:
        raise ConfigError(
            f"buffer.learning_starts={learning_starts}: must be < total_steps ({total_steps}), "
            "or the run makes no update"
        )
    log_every = _integer("logger.every", log["every"])
    ckpt = cfg.get("checkpoint") or {}
    if not isinstance(ckpt, Mapping):
        raise ConfigError(f"checkpoint={ckpt!r}: must be a mapping of its keys")
    return RunConfig(
        env=EnvConfig(
            id=env["id"],
            name=str(env.get("name") or env["id"]),
            kwargs=tuple(sorted(_mapping("env.kwargs", env.get("kwargs")).items())),
            max_episode_steps=max_episode_steps,
        ),
        network=network,
        network_name=str(net.get("name", f"type{network.type}")),
        seed=_integer("seed", cfg["seed"], lo=0),
        total_steps=total_steps,
        total_episodes=None
        if cfg.get("total_episodes") is None
        else _integer("total_episodes", cfg["total_episodes"]),
        driver=_choice("driver", cfg.get("driver", "auto"), DRIVERS),
        n_step=n_step,
        gamma=_number("gamma", cfg["gamma"], 0, 1),
        tau=_number("tau", cfg["tau"], lo=0),
        operator=operator,
        double=double,
        entropy_bonus=_flag("entropy_bonus", cfg["entropy_bonus"]),
        lr=_number("lr", cfg["lr"], lo=0, lo_open=True),
        lr_schedule=_choice("lr_schedule", cfg["lr_schedule"], ("constant", "linear")),
        batch_size=batch_size,
        loss=_choice("loss", cfg["loss"], ("huber", "mse")),
        buffer_capacity=capacity,
        learning_starts=learning_starts,
        train_every=_integer("train.every", train["every"]),
        train_updates=_integer("train.updates", train["updates"]),
        polyak=_number("target.polyak", target["polyak"], 0, 1, lo_open=True),
        target_period=_integer("target.period", target["period"], lo=0),
        optimizer=_optimizer(optim["name"], optimizer_kwargs),
        optimizer_kwargs=tuple(sorted(optimizer_kwargs.items())),
        max_grad_norm=max_grad_norm,
        exploration=ExplorationConfig(
            eps_start=_number("exploration.eps_start", explore["eps_start"], 0, 1),
            eps_end=_number("exploration.eps_end", explore["eps_end"], 0, 1),
            eps_decay_steps=_integer(
                "exploration.eps_decay_steps", explore["eps_decay_steps"], lo=0
            ),
            tau=None if explore_tau is None else _number("exploration.tau", explore_tau, lo=0),
        ),
        eval=EvalConfig(
            every=_integer("eval.every", ev["every"]),
            episodes=_integer("eval.episodes", ev["episodes"]),
            seed=_integer("eval.seed", ev["seed"], lo=0),
            diagnostics_policy=_choice(
                "eval.diagnostics_policy", ev["diagnostics_policy"], ("target", "greedy")
            ),
        ),
        logger=LoggerConfig(
            every=log_every,
            progress=_choice("logger.progress", log["progress"], ("auto", "on", "off")),
            wandb=WandbConfig(
                mode=_choice("logger.wandb.mode", wandb["mode"], ("offline", "online", "disabled")),
                project=str(wandb["project"]),
                entity=wandb.get("entity"),
                group=wandb.get("group"),
                tags=tuple(str(t) for t in wandb.get("tags") or ()),
            ),
        ),
        checkpoint=_checkpoint(ckpt, total_steps, log_every),
        resume=_flag("resume", cfg.get("resume", False)),
    )
