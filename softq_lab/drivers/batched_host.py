"""The batched host driver: any gymnasium env, a batch of runs stepped together in one Python loop.

For envs with no JAX version (Blackjack, LunarLander, a user's own env). Each run has its own env;
per env step, one vmapped `act` serves every run, and every `train.every` steps one vmapped `learn`
call writes the new transitions and runs `train.updates` updates for every run. The runs of a batch
share the static structure (`device.program_key`); τ, γ, the learning rate, the ε schedule and the
target update are per-run traced values. One run alone is the plain host driver (`host.train`).

Read top to bottom, `train_batch` is the whole algorithm: act (ε-mixed Boltzmann on q, masked),
step the envs, keep the 1-step transitions, learn, log each run's episodes and learner means, and
every `eval.every` steps evaluate each run with its own `Evaluator`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from softq_lab.core import replay, schedules
from softq_lab.core.learner import Hyper, LearnerSpec
from softq_lab.diagnostics.evaluator import Evaluator
from softq_lab.drivers.steps import TrainState, keep_if, learner_spec, make_steps
from softq_lab.envs import snapshot as snapshot_env
from softq_lab.run.checkpoint import BatchCheckpoints, NoCheckpoints
from softq_lab.run.config import RunConfig, one_line

Logger = Callable[[int, dict[str, Any]], None]  # (global step, record) -> None


class Compiled(NamedTuple):
    init: Callable  # (keys [R]) -> LearnerState [R]
    act: Callable  # (LearnerState [R], obs [R, 1, d], keys [R], eps [R], tau [R], mask) -> ...
    store: Callable  # (TrainState [R], chunk [R, T, 1, ...]) -> TrainState [R]
    learn: Callable  # (TrainState [R], chunk, Hyper [R], running [R]) -> (TrainState, metrics)
    act_one: Callable  # one run's act and q_act, for its evaluator
    q_act_one: Callable


@functools.cache
def compiled(spec: LearnerSpec, batch_size: int, updates: int) -> Compiled:
    """The jitted functions for `spec`, built once per process (every batch shares them)."""
    steps = make_steps(spec, batch_size, updates)

    def learn(ts: TrainState, chunk: replay.Transition, hyper: Hyper, running: jax.Array):
        """`steps.learn`; the learner of a run that has stopped stays as it was."""
        new, metrics = steps.learn(ts, chunk, hyper)
        return new._replace(learner=keep_if(running, new.learner, ts.learner)), metrics

    return Compiled(
        init=jax.jit(jax.vmap(steps.init)),
        act=jax.jit(jax.vmap(steps.act)),
        store=jax.jit(jax.vmap(steps.store), donate_argnums=0),
        learn=jax.jit(jax.vmap(learn), donate_argnums=0),
        act_one=jax.jit(steps.act),
        q_act_one=jax.jit(steps.q_act),
    )


def _stack(xs: Sequence[Any]) -> Any:
    return jax.tree.map(lambda *x: jnp.stack(x), *xs)


def _take(tree: Any, r: int) -> Any:
    return jax.tree.map(lambda x: x[r], tree)


def _chunk(pending: list[list[tuple]]) -> replay.Transition:
    """Per run, T host-side steps -> a Transition with leaves [R, T, 1, ...] (one env stream each)."""
    fields = [
        np.asarray(x) for x in zip(*[list(zip(*p, strict=True)) for p in pending], strict=True)
    ]
    obs, action, reward, terminated, truncated, next_obs, next_mask = fields
    return replay.Transition(
        obs=obs[:, :, None].astype(np.float32),
        action=action[:, :, None].astype(np.int32),
        reward=reward[:, :, None].astype(np.float32),
        terminated=terminated[:, :, None],
        truncated=truncated[:, :, None],
        next_obs=next_obs[:, :, None].astype(np.float32),
        next_mask=next_mask[:, :, None].astype(bool),
    )


def train_batch(
    cfgs: Sequence[RunConfig],
    envs: Sequence[gym.Env],
    logs: Sequence[Logger],
    ckpt: BatchCheckpoints | None = None,
) -> list[dict[str, Any]]:
    """Train run r of `cfgs` on `envs[r]`, logging to `logs[r]`; the runs must share their static
    settings. Returns per run `{"status", "step", "eval", "error"}`: status `finished`; `diverged`
    when a learner metric (loss, q, gradient norm, ...) went non-finite (the run stops at that learn
    call; its batch-mates go on); `failed` when its env raised (likewise); `killed` / `preempted`
    when `ckpt` reported a stop signal (after a checkpoint). `ckpt` saves and restores the batch
    (`run.checkpoint`); none by default."""
    ckpt = ckpt or NoCheckpoints()
    cfg, n_runs = cfgs[0], len(cfgs)
    spec = learner_spec(cfg, envs[0].observation_space.shape, envs[0].action_space.n)
    fns = compiled(spec, cfg.batch_size, cfg.train_updates)
    n_actions = spec.n_actions
    hyper = _stack([Hyper.make(c.tau, c.gamma, c.lr, c.polyak, c.target_period) for c in cfgs])
    lr0 = np.array([c.lr for c in cfgs], np.float32)
    lr_linear = np.array([c.lr_schedule == "linear" for c in cfgs])
    explore = [c.exploration for c in cfgs]
    eps_start = np.array([e.eps_start for e in explore], np.float32)
    eps_end = np.array([e.eps_end for e in explore], np.float32)
    eps_decay = np.array([e.eps_decay_steps for e in explore], np.int32)
    behaviour_tau = jnp.asarray([c.behaviour_tau for c in cfgs], jnp.float32)
    max_episodes = [c.total_episodes or np.inf for c in cfgs]

    keys = [jax.random.split(jax.random.key(c.seed), 3) for c in cfgs]
    key_init, key_learn, key_act = (jnp.stack([k[i] for k in keys]) for i in range(3))
    ts = TrainState(
        learner=fns.init(key_init),
        buffer=_stack([replay.init(cfg.buffer_capacity, 1, spec.obs_shape, n_actions)] * n_runs),
        key=key_learn,
    )
    evaluators = [
        Evaluator(c, env, fns.act_one, fns.q_act_one) for c, env in zip(cfgs, envs, strict=True)
    ]

    def mask_of(info: dict[str, Any]) -> np.ndarray:
        mask = info.get("action_mask")
        return np.ones(n_actions, bool) if mask is None else np.asarray(mask, bool)

    resets = [env.reset(seed=c.seed) for c, env in zip(cfgs, envs, strict=True)]
    obs = [o for o, _ in resets]
    masks = [mask_of(i) for _, i in resets]
    status = ["running"] * n_runs
    stop_step = [0] * n_runs
    error: list[str | None] = [None] * n_runs
    last_eval: list[dict[str, float]] = [{} for _ in cfgs]
    pending: list[list[tuple]] = [[] for _ in cfgs]
    interval: list[dict[str, np.ndarray]] = []  # each learn call's metrics since the last record
    episode, ep_return, ep_length = [0] * n_runs, [0.0] * n_runs, [0] * n_runs
    updates = 0

    def snapshot(r: int) -> tuple[Any, dict[str, Any]]:
        """Run r's checkpoint: its arrays, and the host-side rest as JSON."""
        state = {"train": _take(ts, r), "key_act": key_act[r]}
        meta = {
            "env": snapshot_env.capture(envs[r]),
            "obs": obs[r].tolist(),
            "mask": masks[r].tolist(),
            "pending": [[_json(x) for x in t] for t in pending[r]],
            "interval": [{k: float(v[r]) for k, v in m.items()} for m in interval],
            "episode": episode[r], "ep_return": ep_return[r], "ep_length": ep_length[r],
            "updates": updates,
            "status": status[r], "stop_step": stop_step[r], "error": error[r],
            "last_eval": last_eval[r],
            "evaluator": evaluators[r].snapshot(),
        }  # fmt: skip
        return state, meta

    first_step = 1
    resumed = ckpt.start()
    if resumed is not None:
        like = {"train": _take(ts, 0), "key_act": key_act[0]}
        saved = [ckpt.restore(r, like) for r in range(n_runs)]
        ts = _stack([s.state["train"] for s in saved])
        key_act = jnp.stack([s.state["key_act"] for s in saved])
        interval = [
            {k: np.array([s.meta["interval"][i][k] for s in saved], np.float32) for k in m}
            for i, m in enumerate(saved[0].meta["interval"])
        ]
        updates = saved[0].meta["updates"]
        for r, (env, meta) in enumerate(zip(envs, (s.meta for s in saved), strict=True)):
            obs[r] = np.asarray(meta["obs"], obs[r].dtype)
            masks[r] = np.asarray(meta["mask"], bool)
            pending[r] = [tuple(t) for t in meta["pending"]]
            episode[r], ep_return[r], ep_length[r] = (
                meta["episode"], meta["ep_return"], meta["ep_length"]
            )
            status[r], stop_step[r], error[r] = meta["status"], meta["stop_step"], meta["error"]
            last_eval[r] = meta["last_eval"]
            evaluators[r].restore(meta["evaluator"])
            if meta["env"] is not None:
                snapshot_env.restore(env, meta["env"])
            else:  # an env whose state cannot be restored: the episode in progress is cut there
                obs[r], info = env.reset(seed=cfgs[r].seed + resumed)
                masks[r] = mask_of(info)
                ep_return[r], ep_length[r] = 0.0, 0
                if pending[r]:
                    pending[r][-1] = (*pending[r][-1][:4], True, *pending[r][-1][5:])
        first_step = resumed + 1

    start = tick = time.perf_counter()
    tick_step = first_step - 1

    def diverge(r: int, step: int, what: str) -> None:
        status[r], stop_step[r] = "diverged", step
        error[r] = f"non-finite learner/{what} at step {step}"

    def fail(r: int, step: int, err: Exception) -> None:
        """Run r's env raised: the run ends `failed` (its learner frozen), the others go on."""
        status[r], stop_step[r] = "failed", step
        error[r] = one_line(err)

    for step in range(first_step, cfg.total_steps + 1):  # `step` env steps done after this one
        epsilon = schedules.linear_epsilon(step - 1, eps_start, eps_end, eps_decay)
        actions, _, key_act = fns.act(
            ts.learner,
            np.stack(obs)[:, None],
            key_act,
            epsilon,
            behaviour_tau,
            np.stack(masks)[:, None],
        )
        actions = np.asarray(actions)[:, 0]
        ending: list[int] = []
        for r, env in enumerate(envs):
            a = int(actions[r])
            if status[r] == "failed":  # its env is broken: a placeholder keeps the batch's shape
                pending[r].append((obs[r], a, 0.0, False, True, obs[r], masks[r]))
                continue
            try:
                next_obs, reward, terminated, truncated, info = env.step(a)
            except Exception as err:  # this run fails; its batch-mates go on
                fail(r, step, err)
                pending[r].append((obs[r], a, 0.0, False, True, obs[r], masks[r]))
                continue
            next_mask = mask_of(info)
            if status[r] == "running":
                evaluators[r].observe(obs[r], a)
            pending[r].append((obs[r], a, reward, terminated, truncated, next_obs, next_mask))
            ep_return[r] += float(reward)
            ep_length[r] += 1
            if terminated or truncated:
                if status[r] == "running":
                    logs[r](step, {
                        "train/episode_return": ep_return[r],
                        "train/episode_length": ep_length[r],
                        "train/episode": episode[r],
                        **info.get("metrics", {}),
                    })  # fmt: skip
                    if episode[r] + 1 >= max_episodes[r]:
                        ending.append(r)
                episode[r], ep_return[r], ep_length[r] = episode[r] + 1, 0.0, 0
                try:
                    obs[r], info = env.reset()
                except Exception as err:
                    fail(r, step, err)
                    continue
                masks[r] = mask_of(info)
            else:
                obs[r], masks[r] = next_obs, next_mask

        if len(pending[0]) == cfg.train_every:
            if step >= cfg.learning_starts:
                lr = schedules.learning_rate(step, lr0, lr_linear, cfg.total_steps)
                running = np.array([s == "running" for s in status])
                ts, metrics = fns.learn(ts, _chunk(pending), hyper._replace(lr=lr), running)
                metrics = jax.device_get(metrics)
                for r in np.nonzero(running)[0]:
                    bad = [k for k, v in metrics.items() if not np.isfinite(v[r])]
                    if bad:  # stop now; its last finite metrics are logged below
                        _log_learner(logs[r], step, interval, r, epsilon[r], updates)
                        diverge(r, step, bad[0])
                interval.append(metrics)
                updates += cfg.train_updates
            else:
                ts = fns.store(ts, _chunk(pending))
            pending = [[] for _ in cfgs]

        if step % cfg.logger.every == 0:
            now = time.perf_counter()
            perf = {
                "perf/sps": (step - tick_step) / (now - tick),
                "perf/elapsed_s": now - start,
            }
            for r in range(n_runs):
                if status[r] == "running":
                    _log_learner(logs[r], step, interval, r, epsilon[r], updates, perf)
            interval = []
            tick, tick_step = now, step

        eval_due = step % cfg.eval.every == 0 or step == cfg.total_steps
        for r in range(n_runs):
            if status[r] != "running" or not (eval_due or r in ending):
                continue
            try:
                last_eval[r] = evaluators[r](_take(ts.learner, r))
            except Exception as err:
                fail(r, step, err)
                continue
            logs[r](step, last_eval[r])
            if r in ending or step == cfg.total_steps:
                status[r], stop_step[r] = "finished", step
        if all(s != "running" for s in status):
            break
        if ckpt.due(step) or ckpt.stop:
            for r in range(n_runs):
                ckpt.save(r, step, *snapshot(r))
        if ckpt.stop:
            for r in range(n_runs):
                if status[r] == "running":
                    status[r], stop_step[r] = ckpt.stop, step
                    error[r] = f"stopped by a signal at step {step}"
            break

    for ev in evaluators:
        ev.close()
    return [
        {"status": status[r], "step": stop_step[r], "eval": last_eval[r], "error": error[r]}
        for r in range(n_runs)
    ]


def _log_learner(
    log: Logger,
    step: int,
    interval: list[dict[str, np.ndarray]],
    r: int,
    epsilon: float,
    updates: int,
    perf: dict[str, float] | None = None,
) -> None:
    """Run r's record of the learner metrics' means over `interval` (the learn calls since the last
    record)."""
    record: dict[str, Any] = {"train/epsilon": float(epsilon), "learner/updates": updates}
    if interval:
        record.update(
            {f"learner/{k}": float(np.mean([m[k][r] for m in interval])) for k in interval[0]}
        )
    log(step, {**record, **(perf or {})})


def _json(x: Any) -> Any:
    return x.tolist() if hasattr(x, "tolist") else x
