"""The device driver: a batch of runs on a pure JAX env as one compiled program.

The runs of a batch share everything static (env, network, n-step, batch size, buffer, step
counts: `program_key`); what differs per run is traced (`RunParams`: seed, τ, γ, lr and its
schedule, ε schedule, behaviour τ, target update, episode limit). Read top to bottom, one chunk of
env steps is

    scan over steps t = start+1 … stop:                        (one jitted call per chunk)
        vmap over runs:  ε(t); act (ε-mixed Boltzmann on q, masked); env step with auto-reset;
                         store the 1-step transition (with the true final observation and its mask)
        if t % train.every == 0 and t ≥ learning_starts:
            vmap over runs:  `train.updates` updates on sampled n-step windows (`steps.update`)

The step counter is outside the vmap, so the learner call is a real branch shared by all runs, not a
select that computes both sides. A run whose learner metrics go non-finite stops at that learn call
(`diverged_at`). Each chunk returns the episodes that ended (per step, per run) and the learner
metrics' means since the last record; the host writes them to each run's own logger as they arrive,
so a killed batch keeps what was logged. Chunks end at every record, evaluation and checkpoint step;
at a checkpoint (or a stop signal) each run's whole carry is saved to its own dir.

At evaluation steps one more jitted call runs, for every run, greedy and
target-policy episodes in a scan (and snapshots the q-table of a tabular env); the host turns them
into the same records as the host driver's `Evaluator` (`diagnostics.evaluator.evaluation_record`).

Randomness: every key of a run comes from its own seed (`jax.random.key(seed)`), never from its
position or its batch-mates, so a run gives the same actions batched or alone.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from softq_lab.core import replay, schedules
from softq_lab.core.learner import METRICS, Hyper, LearnerSpec
from softq_lab.diagnostics.episodes import Episode
from softq_lab.drivers.steps import TrainState, keep_if, learner_spec, make_steps
from softq_lab.envs.functional import JaxEnv, auto_reset_step
from softq_lab.run.checkpoint import BatchCheckpoints, NoCheckpoints
from softq_lab.run.config import RunConfig

Logger = Callable[[int, dict[str, Any]], None]  # (global step, record) -> None
NO_EPISODE_LIMIT = np.iinfo(np.int32).max


class RunParams(NamedTuple):
    """A run's traced values (scalars; a leading run axis in a batch)."""

    seed: jax.Array
    hyper: Hyper
    lr_linear: jax.Array  # bool: decay lr linearly to 0 at total_steps
    eps_start: jax.Array
    eps_end: jax.Array
    eps_decay_steps: jax.Array
    behaviour_tau: jax.Array
    total_episodes: jax.Array  # the run stops after this many episodes
    eval_seed: jax.Array

    @classmethod
    def of(cls, cfg: RunConfig) -> RunParams:
        explore = cfg.exploration
        episodes = cfg.total_episodes
        return cls(
            seed=np.int32(cfg.seed),
            hyper=Hyper.make(cfg.tau, cfg.gamma, cfg.lr, cfg.polyak, cfg.target_period),
            lr_linear=np.bool_(cfg.lr_schedule == "linear"),
            eps_start=np.float32(explore.eps_start),
            eps_end=np.float32(explore.eps_end),
            eps_decay_steps=np.int32(explore.eps_decay_steps),
            behaviour_tau=np.float32(cfg.behaviour_tau),
            total_episodes=np.int32(NO_EPISODE_LIMIT if episodes is None else episodes),
            eval_seed=np.int32(cfg.seed + cfg.eval.seed),
        )


# What a run's config may vary inside one batch: everything else must be equal (`program_key`).
TRACED_FIELDS = {
    "seed": 0,
    "tau": 0.0,
    "gamma": 0.0,
    "lr": 0.0,
    "lr_schedule": "constant",
    "polyak": 0.0,
    "target_period": 0,
    "exploration": None,
    "eval": None,
    "logger": None,
    "total_episodes": None,
}


def program_key(cfg: RunConfig) -> RunConfig:
    """`cfg` with its traced fields blanked: runs with equal keys share one compiled program."""
    fields = {f.name for f in dataclasses.fields(cfg)}
    blank = {k: v for k, v in TRACED_FIELDS.items() if k in fields}
    blank["eval"] = dataclasses.replace(cfg.eval, seed=0)
    blank["logger"] = dataclasses.replace(cfg.logger, wandb=None)
    return dataclasses.replace(cfg, **blank)


@dataclass(frozen=True)
class Program:
    """The static structure of a batch (hashable: it keys the compiled functions)."""

    env: JaxEnv
    spec: LearnerSpec
    batch_size: int
    capacity: int
    learning_starts: int
    train_every: int
    train_updates: int
    total_steps: int
    eval_episodes: int
    log_every: int
    n_states: int  # > 0 for a tabular env (one-hot observations): visits and q-table snapshots

    @classmethod
    def of(cls, cfg: RunConfig, env: JaxEnv, n_states: int = 0) -> Program:
        """The program of `cfg`'s static settings on `env`."""
        return cls(
            env=env,
            spec=learner_spec(cfg, env.obs_shape, env.n_actions),
            batch_size=cfg.batch_size,
            capacity=cfg.buffer_capacity,
            learning_starts=cfg.learning_starts,
            train_every=cfg.train_every,
            train_updates=cfg.train_updates,
            total_steps=cfg.total_steps,
            eval_episodes=cfg.eval.episodes,
            log_every=cfg.logger.every,
            n_states=n_states,
        )


class RunState(NamedTuple):
    """One run's carry through the scan."""

    train: TrainState  # learner, replay buffer, sampling key
    env_state: Any
    obs: jax.Array  # [d], what the run acts on next
    mask: jax.Array  # [A] bool, its valid actions
    key: jax.Array  # acting and env randomness
    eval_key: jax.Array
    episode: jax.Array  # episodes completed
    ep_return: jax.Array
    ep_length: jax.Array
    stopped_at: jax.Array  # the step the run stopped at (last episode, or diverged); 0 while it runs
    diverged_at: jax.Array  # the step of the learn call whose metrics were non-finite; 0 if none
    metric_sum: dict[str, jax.Array]  # learner metrics summed over the learn calls since the record
    learn_calls: jax.Array
    updates: jax.Array
    visits: jax.Array  # [S, A] visit counts on a tabular env ([0, A] otherwise)


class StepOut(NamedTuple):
    """What one env step reports per run (a leading [steps] axis from the scan)."""

    done: jax.Array  # an episode of a running run ended on this step
    ep_return: jax.Array
    ep_length: jax.Array
    episode: jax.Array
    metrics: dict[str, jax.Array]  # the env's episode metrics


class ChunkOut(NamedTuple):
    steps: StepOut  # leaves [steps, runs]
    learner: dict[str, jax.Array]  # [runs]: mean over the chunk's learn calls
    learn_calls: jax.Array  # [runs]
    updates: jax.Array  # [runs]
    epsilon: jax.Array  # [runs], at the chunk's last step
    epsilon_at_divergence: jax.Array  # [runs], at the step the run diverged (0 if it did not)


class EpisodesOut(NamedTuple):
    """A batch of evaluation episodes, padded to the time limit T (leaves [E, T, ...])."""

    q: jax.Array  # [E, T, A]
    action: jax.Array
    reward: jax.Array
    mask: jax.Array  # [E, T, A]
    length: jax.Array  # [E]
    terminated: jax.Array
    truncated: jax.Array
    final_q: jax.Array  # [E, A], q at the final observation
    final_mask: jax.Array


class EvalOut(NamedTuple):
    greedy: EpisodesOut
    target: EpisodesOut
    q_table: jax.Array  # [S, A] on a tabular env, else [0, A]
    visits: jax.Array


class Compiled(NamedTuple):
    init: Callable  # (RunParams [R]) -> RunState [R]
    chunk: Callable  # (RunState, RunParams, start, length) -> (RunState, ChunkOut)
    evaluate: Callable  # (RunState, RunParams) -> (RunState, EvalOut)


def _zero_metrics() -> dict[str, jax.Array]:
    """Zeros under the learner metrics' names (to start each chunk's sums)."""
    return {name: jnp.zeros((), jnp.float32) for name in METRICS}


@functools.cache
def compiled(program: Program) -> Compiled:
    """The jitted, vmapped functions of `program`, built once per process."""
    env, spec = program.env, program.spec
    steps = make_steps(spec, program.batch_size, program.train_updates)
    zero_metrics = _zero_metrics()
    tabular = program.n_states > 0

    def init(p: RunParams) -> RunState:
        key_init, key_learn, key_act, key_env = jax.random.split(jax.random.key(p.seed), 4)
        buffer = replay.init(program.capacity, 1, env.obs_shape, env.n_actions)
        env_state, obs = env.reset(key_env)
        return RunState(
            train=TrainState(steps.init(key_init), buffer, key_learn),
            env_state=env_state,
            obs=obs,
            mask=env.action_mask(env_state),
            key=key_act,
            eval_key=jax.random.key(p.eval_seed),
            episode=jnp.zeros((), jnp.int32),
            ep_return=jnp.zeros((), jnp.float32),
            ep_length=jnp.zeros((), jnp.int32),
            stopped_at=jnp.zeros((), jnp.int32),
            diverged_at=jnp.zeros((), jnp.int32),
            metric_sum=zero_metrics,
            learn_calls=jnp.zeros((), jnp.float32),
            updates=jnp.zeros((), jnp.int32),
            visits=jnp.zeros((program.n_states, env.n_actions), jnp.int32),
        )

    def env_step(run: RunState, p: RunParams, step: jax.Array) -> tuple[RunState, StepOut]:
        """Env step number `step` (1-based) of one run: act, step, store."""
        running = run.stopped_at == 0
        key, key_act, key_env = jax.random.split(run.key, 3)
        epsilon = schedules.linear_epsilon(step - 1, p.eps_start, p.eps_end, p.eps_decay_steps)
        action, _, _ = steps.act(
            run.train.learner, run.obs[None], key_act, epsilon, p.behaviour_tau, run.mask[None]
        )
        action = action[0]
        out = auto_reset_step(env, run.env_state, action, key_env)
        transition = replay.Transition(
            obs=run.obs,
            action=action,
            reward=out.reward,
            terminated=out.terminated,
            truncated=out.truncated,
            next_obs=out.final_obs,
            next_mask=out.next_mask,
        )
        train = steps.store(run.train, jax.tree.map(lambda x: x[None, None], transition))
        done = out.terminated | out.truncated
        ended = done & running
        ep_return = run.ep_return + out.reward
        ep_length = run.ep_length + 1
        episode = run.episode + ended
        visits = run.visits
        if tabular:
            visits = visits.at[jnp.argmax(run.obs), action].add(running.astype(jnp.int32))
        record = StepOut(ended, ep_return, ep_length, run.episode, out.metrics)
        run = run._replace(
            train=train,
            env_state=out.state,
            obs=out.obs,
            mask=env.action_mask(out.state),
            key=key,
            episode=episode,
            ep_return=jnp.where(done, 0.0, ep_return),
            ep_length=jnp.where(done, 0, ep_length),
            stopped_at=jnp.where(ended & (episode >= p.total_episodes), step, run.stopped_at),
            visits=visits,
        )
        return run, record

    class Learned(NamedTuple):
        """What a learn call changes: the buffer is only read, so the branch never copies it."""

        learner: Any
        key: jax.Array
        metric_sum: dict[str, jax.Array]
        learn_calls: jax.Array
        updates: jax.Array
        stopped_at: jax.Array
        diverged_at: jax.Array

    def learned(run: RunState) -> Learned:
        return Learned(
            run.train.learner, run.train.key, run.metric_sum, run.learn_calls, run.updates,
            run.stopped_at, run.diverged_at,
        )  # fmt: skip

    def learn(run: RunState, p: RunParams, step: jax.Array, freeze: bool) -> Learned:
        """`train.updates` updates of one run. With `freeze`, a run that has stopped keeps its
        learner; without, the caller knows that every run is running (and the freeze would be one
        select per parameter that changes nothing). Non-finite metrics stop the run here, its
        learner being that of the diverging update and its sums keeping the last finite ones."""
        lr = schedules.learning_rate(step, p.hyper.lr, p.lr_linear, program.total_steps)
        train, metrics = steps.update(run.train, p.hyper._replace(lr=lr))
        running = run.stopped_at == 0
        learner = keep_if(running, train.learner, run.train.learner) if freeze else train.learner
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(m)) for m in metrics.values()]))
        diverges = running & ~finite
        running = running & finite
        return Learned(
            learner=learner,
            key=train.key,
            metric_sum=keep_if(
                running, jax.tree.map(jnp.add, run.metric_sum, metrics), run.metric_sum
            ),
            learn_calls=run.learn_calls + running,
            updates=run.updates + running * program.train_updates,
            stopped_at=jnp.where(diverges, step, run.stopped_at),
            diverged_at=jnp.where(diverges, step, run.diverged_at),
        )

    def chunk(runs: RunState, params: RunParams, start: jax.Array, length: int):
        fresh = start % program.log_every == 0  # the last chunk ended with a record: new sums
        runs = runs._replace(
            metric_sum=jax.tree.map(lambda s: jnp.where(fresh, 0.0, s), runs.metric_sum),
            learn_calls=jnp.where(fresh, 0.0, runs.learn_calls),
        )

        def body(runs: RunState, step: jax.Array):
            runs, record = jax.vmap(env_step, (0, 0, None))(runs, params, step)
            due = (step % program.train_every == 0) & (step >= program.learning_starts)

            def learning(freeze: bool) -> Callable[[RunState], Learned]:
                learn_one = functools.partial(learn, freeze=freeze)
                return lambda r: jax.vmap(learn_one, (0, 0, None))(r, params, step)

            def learn_all(runs: RunState) -> Learned:
                # While every run of the batch is running (nearly always), freezing the stopped
                # ones changes nothing: skip its select per parameter (half of a small net's step).
                everyone = jnp.all(runs.stopped_at == 0)
                return jax.lax.cond(everyone, learning(False), learning(True), runs)

            out = jax.lax.cond(due, learn_all, jax.vmap(learned), runs)
            runs = runs._replace(
                train=runs.train._replace(learner=out.learner, key=out.key),
                metric_sum=out.metric_sum,
                learn_calls=out.learn_calls,
                updates=out.updates,
                stopped_at=out.stopped_at,
                diverged_at=out.diverged_at,
            )
            return runs, record

        stop = start + length
        runs, records = jax.lax.scan(body, runs, start + 1 + jnp.arange(length))
        calls = runs.learn_calls
        means = jax.tree.map(lambda s: s / jnp.maximum(calls, 1.0), runs.metric_sum)
        epsilon_at = jax.vmap(schedules.linear_epsilon, (0, 0, 0, 0))
        epsilon = epsilon_at(
            jnp.full_like(runs.diverged_at, stop - 1), params.eps_start, params.eps_end,
            params.eps_decay_steps,
        )  # fmt: skip
        diverged = epsilon_at(
            runs.diverged_at - 1, params.eps_start, params.eps_end, params.eps_decay_steps
        )
        return runs, ChunkOut(records, means, calls, runs.updates, epsilon, diverged)

    def episodes(learner: Any, key: jax.Array, tau: jax.Array) -> EpisodesOut:
        """`eval.episodes` episodes of the Boltzmann(q/τ) policy (greedy at τ = 0), in lockstep."""
        n, horizon = program.eval_episodes, env.max_episode_steps
        key_reset, key = jax.random.split(key)
        state, obs = jax.vmap(env.reset)(jax.random.split(key_reset, n))

        def body(carry, key):
            state, obs, alive, final_obs, final_mask, terminated, truncated = carry
            key_act, key_env = jax.random.split(key)
            mask = jax.vmap(env.action_mask)(state)
            q = steps.q_act(learner, obs)
            action, _, _ = steps.act(learner, obs, key_act, 0.0, tau, mask)
            state, next_obs, reward, term, trunc = jax.vmap(env.step)(
                state, action, jax.random.split(key_env, n)
            )
            ends = alive & (term | trunc)
            next_mask = jax.vmap(env.action_mask)(state)
            carry = (
                state,
                next_obs,
                alive & ~(term | trunc),
                jnp.where(ends[:, None], next_obs, final_obs),
                jnp.where(ends[:, None], next_mask, final_mask),
                terminated | (ends & term),
                truncated | (ends & trunc),
            )
            return carry, (q, action, jnp.where(alive, reward, 0.0), mask, alive)

        false = jnp.zeros((n,), bool)
        carry = (state, obs, ~false, obs, jax.vmap(env.action_mask)(state), false, false)
        carry, (q, action, reward, mask, alive) = jax.lax.scan(
            body, carry, jax.random.split(key, horizon)
        )
        _, _, _, final_obs, final_mask, terminated, truncated = carry
        swap = lambda x: jnp.swapaxes(x, 0, 1)  # noqa: E731  [T, E, ...] -> [E, T, ...]
        return EpisodesOut(
            q=swap(q),
            action=swap(action),
            reward=swap(reward),
            mask=swap(mask),
            length=jnp.sum(alive, axis=0),
            terminated=terminated,
            truncated=truncated,
            final_q=steps.q_act(learner, final_obs),
            final_mask=final_mask,
        )

    def evaluate_one(run: RunState, p: RunParams) -> tuple[RunState, EvalOut]:
        key, key_greedy, key_target = jax.random.split(run.eval_key, 3)
        learner = run.train.learner
        q_table = jnp.zeros((0, env.n_actions), jnp.float32)
        if tabular:
            q_table = steps.q_act(learner, jnp.eye(program.n_states, dtype=jnp.float32))
        out = EvalOut(
            greedy=episodes(learner, key_greedy, jnp.zeros(())),
            target=episodes(learner, key_target, p.hyper.tau),
            q_table=q_table,
            visits=run.visits,
        )
        return run._replace(eval_key=key), out

    return Compiled(
        init=jax.jit(jax.vmap(init)),
        chunk=jax.jit(chunk, static_argnums=3, donate_argnums=0),
        evaluate=jax.jit(jax.vmap(evaluate_one)),
    )


# --- the host side: chunks, evaluations, records ---------------------------------------------------


def to_episodes(out: EpisodesOut) -> list[Episode]:
    """Host-side `Episode`s (what `diagnostics` reads) from one run's padded episode arrays."""
    episodes = []
    for e in range(out.length.shape[0]):
        n = int(out.length[e])
        episodes.append(
            Episode(
                obs=[None] * n,
                actions=[int(a) for a in out.action[e, :n]],
                rewards=[float(r) for r in out.reward[e, :n]],
                q=list(out.q[e, :n]),
                masks=list(out.mask[e, :n]),
                final_obs=None,
                final_mask=out.final_mask[e],
                final_q=out.final_q[e],
                terminated=bool(out.terminated[e]),
                truncated=bool(out.truncated[e]),
            )
        )
    return episodes


def chunk_bounds(total_steps: int, every: Sequence[int]) -> list[int]:
    """The steps where a chunk ends: every multiple of each of `every`, and the last step."""
    stops = {total_steps}
    for k in every:
        stops.update(range(k, total_steps + 1, k))
    return sorted(stops)


def _take(tree: Any, r: int) -> Any:
    return jax.tree.map(lambda x: x[r], tree)


class _Run:
    """A run's host-side book-keeping: its config, logger and exact truth."""

    def __init__(self, cfg: RunConfig, log: Logger, truth: Any) -> None:
        self.cfg, self.log, self.truth = cfg, log, truth
        self.status = "running"
        self.step = 0  # the step the run ended at
        self.error: str | None = None
        self.last_eval: dict[str, float] = {}


def train_batch(
    cfgs: Sequence[RunConfig],
    env: JaxEnv,
    logs: Sequence[Logger],
    truths: Sequence[Any] | None = None,
    ckpt: BatchCheckpoints | None = None,
) -> list[dict[str, Any]]:
    """Train every run of `cfgs` (equal `program_key`s) on `env`, as one program.

    `logs[r]` receives run r's records, exactly as the host driver's; `truths[r]` is its exact truth
    on a tabular env. Returns per run `{"status", "step", "eval", "error"}`: status `finished`;
    `diverged` when a learner metric went non-finite (the run stops at that learn call; its
    batch-mates go on); `killed` / `preempted` when `ckpt` reported a stop signal (after a
    checkpoint). `ckpt` saves and restores the batch (`run.checkpoint`); none by default."""
    ckpt = ckpt or NoCheckpoints()
    first = cfgs[0]
    if any(program_key(c) != program_key(first) for c in cfgs):
        raise ValueError("train_batch: runs differ in a static setting; group them by program_key")
    program = Program.of(first, env, n_states=env.obs_shape[0] if truths and truths[0] else 0)
    fns = compiled(program)
    runs_host = [
        _Run(c, log, None if truths is None else truths[r])
        for r, (c, log) in enumerate(zip(cfgs, logs, strict=True))
    ]
    n_runs = len(runs_host)
    params = place(_pad([RunParams.of(c) for c in cfgs], jax.device_count()))
    runs = fns.init(params)

    start = ckpt.start() or 0
    if start:
        saved = [ckpt.restore(r, _take(runs, 0)) for r in range(n_runs)]
        states = [s.state for s in saved]
        runs = place(_pad(states, jax.device_count()))
        for run, s in zip(runs_host, saved, strict=True):
            run.status, run.step, run.error = s.meta["status"], s.meta["step"], s.meta["error"]
            run.last_eval = s.meta["last_eval"]

    tick = begin = time.perf_counter()
    spent = {"perf/device_s": 0.0, "perf/eval_s": 0.0}  # the rest of the wall time is the host's
    checkpoint_every = (first.checkpoint.every,) if first.checkpoint.every else ()
    every = (first.logger.every, first.eval.every, *checkpoint_every)
    for stop in [b for b in chunk_bounds(first.total_steps, every) if b > start]:
        runs, out = fns.chunk(runs, params, jnp.int32(start), stop - start)
        out = jax.device_get(out)
        stopped_at, diverged_at = (
            np.asarray(x) for x in jax.device_get((runs.stopped_at, runs.diverged_at))
        )
        now = time.perf_counter()
        spent["perf/device_s"] += now - tick
        sps = (stop - start) / (now - tick)
        _log_episodes(runs_host, out.steps, start)
        _log_divergence(runs_host, out, diverged_at)
        if stop % first.logger.every == 0:
            perf = {"perf/sps": sps, "perf/elapsed_s": now - begin, **spent}
            _log_interval(runs_host, out, stop, perf, stopped_at)
        finishing = [
            r
            for r, run in enumerate(runs_host)
            if run.status == "running" and (stopped_at[r] > 0 or stop == first.total_steps)
        ]
        if stop % first.eval.every == 0 or finishing:
            evaluating = time.perf_counter()
            runs, evals = fns.evaluate(runs, params)
            evals = jax.device_get(evals)
            spent["perf/eval_s"] += time.perf_counter() - evaluating
            for r, run in enumerate(runs_host):
                if run.status != "running":
                    continue
                due = stop % first.eval.every == 0 or r in finishing
                if due:
                    at = int(stopped_at[r]) if stopped_at[r] > 0 else stop
                    run.last_eval = _eval_record(run, _take(evals, r))
                    run.log(at, run.last_eval)
        for r in finishing:
            run = runs_host[r]
            run.status = "finished"
            run.step = int(stopped_at[r]) if stopped_at[r] > 0 else stop
            # the batch's timings once more, with the final evaluation
            run.log(run.step, {"perf/elapsed_s": time.perf_counter() - begin, **spent})
        start, tick = stop, time.perf_counter()
        if all(run.status != "running" for run in runs_host):
            break
        if ckpt.due(stop) or ckpt.stop:
            for r, run in enumerate(runs_host):
                meta = {"status": run.status, "step": run.step, "error": run.error,
                        "last_eval": run.last_eval}  # fmt: skip
                ckpt.save(r, stop, _take(runs, r), meta)
        if ckpt.stop:
            for run in runs_host:
                if run.status == "running":
                    run.status, run.step = ckpt.stop, stop
                    run.error = f"stopped by a signal at step {stop}"
            break
    return [
        {"status": run.status, "step": run.step, "eval": run.last_eval, "error": run.error}
        for run in runs_host
    ]


def _pad(per_run: list[Any], multiple: int) -> Any:
    """The runs' params (or states) stacked, padded with copies of the last run to a multiple of
    `multiple` (the padding runs compute alongside and are never logged)."""
    padded = per_run + per_run[-1:] * (-len(per_run) % multiple)
    return jax.tree.map(lambda *x: jnp.stack(x), *padded)


def place(batch: Any) -> Any:
    """Put a batch on the devices, sharded along the run axis when there are several (the runs
    are independent, so the whole program then runs without cross-device traffic)."""
    devices = jax.devices()
    if len(devices) == 1:
        return jax.device_put(batch)
    mesh = jax.sharding.Mesh(np.array(devices), ("runs",))
    return jax.device_put(
        batch, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("runs"))
    )


def _log_episodes(runs: list[_Run], steps: StepOut, start: int) -> None:
    """Each ended episode as the host driver logs it, at the step it ended."""
    ends_t, ends_r = np.nonzero(steps.done)
    for t, r in sorted(zip(ends_t, ends_r, strict=True), key=lambda x: (x[1], x[0])):
        if r >= len(runs):  # a padding run
            continue
        run = runs[r]
        if run.status != "running":
            continue
        record = {
            "train/episode_return": float(steps.ep_return[t, r]),
            "train/episode_length": int(steps.ep_length[t, r]),
            "train/episode": int(steps.episode[t, r]),
            **{k: float(v[t, r]) for k, v in steps.metrics.items()},
        }
        run.log(start + int(t) + 1, record)


def _log_divergence(runs: list[_Run], out: ChunkOut, diverged_at: np.ndarray) -> None:
    """A run whose learner went non-finite in this chunk: its last finite means, then it stops."""
    for r, run in enumerate(runs):
        if run.status != "running" or diverged_at[r] == 0:
            continue
        step = int(diverged_at[r])
        record: dict[str, Any] = {
            "train/epsilon": float(out.epsilon_at_divergence[r]),
            "learner/updates": int(out.updates[r]),
        }
        if out.learn_calls[r] > 0:
            record.update({f"learner/{k}": float(v[r]) for k, v in out.learner.items()})
        run.log(step, record)
        run.status, run.step = "diverged", step
        run.error = f"non-finite learner metrics at step {step}"


def _log_interval(
    runs: list[_Run],
    out: ChunkOut,
    step: int,
    perf: dict[str, float],
    stopped_at: np.ndarray,
) -> None:
    """The learner metrics' means since the last record, and the batch's timings (`perf`). A run
    that completed its last episode before `step` logs none (as on the host driver)."""
    for r, run in enumerate(runs):
        if run.status != "running" or 0 < stopped_at[r] < step:
            continue
        record: dict[str, Any] = {
            "train/epsilon": float(out.epsilon[r]),
            "learner/updates": int(out.updates[r]),
        }
        if out.learn_calls[r] > 0:
            record.update({f"learner/{k}": float(v[r]) for k, v in out.learner.items()})
        run.log(step, {**record, **perf})


def _eval_record(run: _Run, out: EvalOut) -> dict[str, float]:
    """The host driver's evaluation record, from the device's episodes."""
    from softq_lab.diagnostics import (
        evaluator,
    )  # host-side (scipy, gymnasium): not on the start-up path

    cfg = run.cfg
    greedy = to_episodes(out.greedy)
    separate = cfg.tau > 0 and cfg.eval.diagnostics_policy == "target"
    target = to_episodes(out.target) if separate else None
    truth, q_table = run.truth, None
    if truth is not None:
        truth = copy.copy(truth)
        truth.visits = np.asarray(out.visits, np.int64)
        q_table = np.asarray(out.q_table)
    return evaluator.evaluation_record(cfg, greedy, target, None, truth, q_table)
