"""Exact tabular action values by dynamic programming (numpy, float64).

A finite MDP is held as a `TabularMDP`:

- ``p[s, a, s']``: the probability of moving to s' *and not terminating*. A transition that
  terminates the episode contributes its reward to ``r`` and no mass to ``p``, so
  ``1 − Σ_{s'} p[s, a, s']`` is the probability that the episode ends after (s, a).
- ``r[s, a]``: the expected immediate reward, terminating transitions included.
- ``mask[s, a]``: whether a is a valid action in s. Every operator, max, policy and residual below
  uses only valid actions; ``p`` and ``r`` are zero at invalid pairs and are ignored there, and the
  returned action values are ``−inf`` there (an action that cannot be taken is worth −∞ under a max:
  a naive mean over all pairs then fails loudly instead of quietly).

Backup operators on q [..., A] (valid actions only — those with mask True and q > −inf; each is
exactly the hard max at τ = 0):

- hard:       max_a q_a
- soft:       τ·log Σ_a exp(q_a/τ)
- mellowmax:  τ·log( (1/|A_valid|) Σ_a exp(q_a/τ) )
- boltzmann:  Σ_a softmax(q/τ)_a · q_a

Fixed points (`fixed_point`): the n-step learner's target with operator op and on-policy Boltzmann
intermediate actions π_Q = softmax(Q/τ) (greedy at τ = 0) is

    G = Σ_{k<n} γ^k r_{t+k}  [+ Σ_{1≤k<n} γ^k (−τ log π_Q(a_{t+k}|s_{t+k}))]
        + γ^n op_τ(Q(s_{t+n}, ·))

whose expectation defines the map  T(Q) = r + γ P U_1  with  U_n = op_τ(Q)  and, for k = n−1 … 1,

    U_k(s) = Σ_a π_Q(a|s) [ r(s, a)  [− τ log π_Q(a|s)]  + γ Σ_{s'} p(s'|s, a) U_{k+1}(s') ],

the bracketed terms only with the entropy bonus.
For n = 1 this is Q = r + γ P op_τ(Q). Since Σ_a π(a|s)(q_a − τ log π(a|s)) = soft(q, τ) for
π = softmax(q/τ), with the entropy bonus and op = soft every level is the soft backup and the fixed
point is the soft Q*_τ for every n; without the bonus (n > 1, τ > 0) it is not.

Time limits (gymnasium's `TimeLimit` truncation) are not part of the model: these are the values of
the untruncated MDP.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from softq_lab.envs.tabular import valid_actions

Array = np.ndarray
Operator = Callable[..., Array]

_PROB_ATOL = 1e-9


# --------------------------------------------------------------------------------------------------
# The model


@dataclasses.dataclass(frozen=True, eq=False)
class TabularMDP:
    """A finite MDP with termination folded into the transition mass (see the module docstring).

    Attributes:
        p: [S, A, S] continuation probabilities, p[s, a, s'] = P(s', not terminated | s, a).
        r: [S, A] expected immediate reward.
        mask: [S, A] bool, valid actions (all True when omitted); every state needs one.
        initial: [S] start-state distribution, or None when unknown.
    """

    p: Array
    r: Array
    mask: Array | None = None
    initial: Array | None = None

    def __post_init__(self) -> None:
        p = np.asarray(self.p, dtype=np.float64)
        r = np.asarray(self.r, dtype=np.float64)
        if p.ndim != 3 or p.shape[0] != p.shape[2]:
            raise ValueError(f"p must have shape [S, A, S], got {p.shape}")
        n_states, n_actions = p.shape[:2]
        if r.shape != (n_states, n_actions):
            raise ValueError(f"r must have shape [S, A] = {(n_states, n_actions)}, got {r.shape}")
        mask = (
            np.ones((n_states, n_actions), dtype=bool)
            if self.mask is None
            else np.asarray(self.mask).astype(bool)
        )
        if mask.shape != (n_states, n_actions):
            raise ValueError(
                f"mask must have shape [S, A] = {(n_states, n_actions)}, got {mask.shape}"
            )
        if not mask.any(axis=1).all():
            bad = np.flatnonzero(~mask.any(axis=1))
            raise ValueError(f"every state needs a valid action; states {bad.tolist()} have none")
        if not np.all(np.isfinite(p)) or np.any(p < 0) or np.any(p.sum(axis=2) > 1 + _PROB_ATOL):
            raise ValueError("p must be non-negative with Σ_s' p[s, a, s'] ≤ 1 (continuation mass)")
        if not np.all(np.isfinite(r[mask])):
            raise ValueError("r must be finite at valid (s, a)")
        # Invalid pairs carry no model: zero them so that no arithmetic ever sees them.
        p = np.where(mask[..., None], p, 0.0)
        r = np.where(mask, r, 0.0)
        initial = None
        if self.initial is not None:
            initial = np.asarray(self.initial, dtype=np.float64)
            if initial.shape != (n_states,) or abs(initial.sum() - 1) > _PROB_ATOL:
                raise ValueError(f"initial must be a distribution of shape [{n_states}]")
        for name, value in (("p", p), ("r", r), ("mask", mask), ("initial", initial)):
            if value is not None:
                value.setflags(write=False)
            object.__setattr__(self, name, value)

    @property
    def n_states(self) -> int:
        return self.p.shape[0]

    @property
    def n_actions(self) -> int:
        return self.p.shape[1]

    @property
    def terminate_prob(self) -> Array:
        """[S, A]: 1 − Σ_{s'} p[s, a, s'], the probability that the episode ends after (s, a)."""
        return np.clip(1.0 - self.p.sum(axis=2), 0.0, 1.0)


def mdp_from_transitions(
    transitions: Mapping[int, Mapping[int, Sequence[tuple[float, int, float, bool]]]],
    n_states: int,
    n_actions: int,
    mask: Array | None = None,
    initial: Array | None = None,
) -> TabularMDP:
    """A `TabularMDP` from toy-text transitions ``P[s][a] = [(prob, next_s, reward, terminated)]``.

    r[s, a] = Σ prob·reward over all outcomes; p[s, a, s'] = Σ prob over the outcomes that reach s'
    without terminating (repeated outcomes add up). Pairs with ``mask[s, a] = False`` are skipped.
    """
    if mask is None:
        mask = np.ones((n_states, n_actions), dtype=bool)
    mask = np.asarray(mask).astype(bool)
    p = np.zeros((n_states, n_actions, n_states))
    r = np.zeros((n_states, n_actions))
    for s in range(n_states):
        for a in range(n_actions):
            if not mask[s, a]:
                continue
            outcomes = transitions[s][a]
            total = sum(float(prob) for prob, *_ in outcomes)
            if abs(total - 1.0) > 1e-6:
                raise ValueError(f"P[{s}][{a}]: probabilities sum to {total}, not 1")
            for prob, s_next, reward, terminated in outcomes:
                r[s, a] += float(prob) * float(reward)
                if not terminated:
                    p[s, a, int(s_next)] += float(prob)
    return TabularMDP(p=p, r=r, mask=mask, initial=initial)


def tabular_mdp(env: Any) -> TabularMDP:
    """The `TabularMDP` of a gymnasium toy-text env (FrozenLake, CliffWalking, Taxi, MaxBias).

    Reads ``env.unwrapped.P``, the valid actions of ``envs.tabular.valid_actions`` (the env's own
    ``action_mask(s)``, which the drivers act with and the learner bootstraps over: MaxBias's valid
    actions, Taxi's moves that change the state; all actions otherwise), and the start distribution
    ``env.unwrapped.initial_state_distrib`` when present. For the hard max the masked Taxi MDP has
    the same Q* on every valid action (a no-op move costs −1 and leads nowhere, never optimal); a
    soft operator's fixed point is that of the actions the learner can take.
    """
    base = env.unwrapped
    n_states = int(base.observation_space.n)
    n_actions = int(base.action_space.n)
    initial = getattr(base, "initial_state_distrib", None)
    return mdp_from_transitions(
        base.P, n_states, n_actions, mask=valid_actions(env), initial=initial
    )


# --------------------------------------------------------------------------------------------------
# Operators (numpy, float64, valid actions only)


def _check_tau(tau: float) -> float:
    tau = float(tau)
    if not tau >= 0.0 or not np.isfinite(tau):
        raise ValueError(f"tau must be a finite number >= 0, got {tau}")
    return tau


def _mask_for(q: Array, mask: Array | None) -> Array:
    if mask is None:
        return np.ones(q.shape, dtype=bool)
    mask = np.asarray(mask).astype(bool)
    try:
        return np.broadcast_to(mask, q.shape)
    except ValueError:
        raise ValueError(
            f"mask shape {mask.shape} does not broadcast against q shape {q.shape}"
        ) from None


def _masked(q: Array, mask: Array | None) -> tuple[Array, Array]:
    """(q with invalid actions at −inf, the validity mask). An entry of q that is −inf counts as
    invalid too, so the values returned here (−inf at invalid pairs) can be fed back unmasked."""
    q = np.asarray(q, dtype=np.float64)
    if q.ndim < 1:
        raise ValueError(f"q must have shape [..., A], got {q.shape}")
    m = _mask_for(q, mask) & (q != -np.inf)
    return np.where(m, q, -np.inf), m


def hard(q: Array, tau: float = 0.0, mask: Array | None = None) -> Array:
    """max_a q_a over valid actions; τ is accepted for a uniform signature and ignored."""
    del tau
    qm, _ = _masked(q, mask)
    return qm.max(axis=-1)


def soft(q: Array, tau: float, mask: Array | None = None) -> Array:
    """τ·log Σ_a exp(q_a/τ) = m + τ·log Σ_a exp((q_a − m)/τ), m = max_a q_a; the max at τ = 0."""
    tau = _check_tau(tau)
    qm, _ = _masked(q, mask)
    m = qm.max(axis=-1)
    if tau == 0.0:
        return m
    return m + tau * np.log(np.sum(np.exp((qm - m[..., None]) / tau), axis=-1))


def mellowmax(q: Array, tau: float, mask: Array | None = None) -> Array:
    """τ·log( (1/|A_valid|) Σ_a exp(q_a/τ) ) = soft(q, τ) − τ·log|A_valid|; the max at τ = 0."""
    tau = _check_tau(tau)
    _, m = _masked(q, mask)
    return soft(q, tau, mask) - tau * np.log(m.sum(axis=-1))


def boltzmann_policy(q: Array, tau: float, mask: Array | None = None) -> Array:
    """π(a) = softmax(q/τ)_a over valid actions (0 elsewhere); at τ = 0 the one-hot greedy policy,
    ties going to the lowest index."""
    tau = _check_tau(tau)
    qm, m = _masked(q, mask)
    if tau == 0.0:
        greedy = np.argmax(qm, axis=-1)
        return (np.arange(qm.shape[-1]) == greedy[..., None]).astype(np.float64)
    z = np.exp((qm - qm.max(axis=-1, keepdims=True)) / tau)
    return np.where(m, z / z.sum(axis=-1, keepdims=True), 0.0)


def boltzmann(q: Array, tau: float, mask: Array | None = None) -> Array:
    """Σ_a softmax(q/τ)_a · q_a over valid actions; the max at τ = 0."""
    qm, m = _masked(q, mask)
    pi = boltzmann_policy(q, tau, mask)
    return np.sum(np.where(m, pi * np.where(m, qm, 0.0), 0.0), axis=-1)


def entropy(pi: Array) -> Array:
    """H(π) = −Σ_a π_a log π_a in nats (0·log 0 = 0)."""
    pi = np.asarray(pi, dtype=np.float64)
    logp = np.log(np.where(pi > 0, pi, 1.0))
    return -np.sum(pi * logp, axis=-1)


OPERATORS: dict[str, Operator] = {
    "hard": hard,
    "soft": soft,
    "mellowmax": mellowmax,
    "boltzmann": boltzmann,
}


def get_operator(name: str) -> Operator:
    """The operator called `name` (one of OPERATORS)."""
    if name not in OPERATORS:
        raise ValueError(f"operator={name!r}: must be one of {sorted(OPERATORS)}")
    return OPERATORS[name]


# --------------------------------------------------------------------------------------------------
# Solutions


class Solution(NamedTuple):
    """q: [S, A] action values (−inf at invalid pairs), or None when `converged` is False.

    iterations: value-iteration sweeps used (0 for a direct linear solve); reason: why it stopped.
    residual: the last sup-norm change max|T(Q) − Q| over valid pairs (linear solves: the
    equation's residual), for a diagnosis either way.
    """

    q: Array | None
    converged: bool
    iterations: int
    reason: str
    residual: float = float("nan")


def _check_gamma(gamma: float) -> float:
    gamma = float(gamma)
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1], got {gamma}")
    return gamma


def _policy_model(mdp: TabularMDP, pi: Array, tau: float, bonus: bool) -> tuple[Array, Array]:
    """(r_π [S], P_π [S, S]) for one on-policy step: r_π(s) = Σ_a π(a|s)(r(s,a) [+ τ·H-term]),
    P_π(s, s') = Σ_a π(a|s) p(s'|s, a). With the bonus, r_π(s) gains τ·H(π(·|s))."""
    r_pi = np.sum(pi * mdp.r, axis=1)
    if bonus and tau > 0:
        r_pi = r_pi + tau * entropy(pi)
    p_pi = np.einsum("sa,sat->st", pi, mdp.p)
    return r_pi, p_pi


def bellman_target(
    mdp: TabularMDP,
    q: Array,
    gamma: float,
    tau: float,
    operator: str = "soft",
    n_step: int = 1,
    entropy_bonus: bool = False,
) -> Array:
    """T(Q) [S, A]: the expected n-step target of the module docstring (−inf at invalid pairs)."""
    op = get_operator(operator)
    if np.shape(q) != mdp.mask.shape:
        raise ValueError(f"q must have shape [S, A] = {mdp.mask.shape}, got {np.shape(q)}")
    v = op(q, tau, mdp.mask)
    if n_step > 1:
        pi = boltzmann_policy(q, tau, mdp.mask)
        r_pi, p_pi = _policy_model(mdp, pi, tau, entropy_bonus)
        for _ in range(n_step - 1):
            v = r_pi + gamma * (p_pi @ v)
    target = mdp.r + gamma * (mdp.p.reshape(-1, mdp.n_states) @ v).reshape(mdp.r.shape)
    return np.where(mdp.mask, target, -np.inf)


def _sup_norm(a: Array, mask: Array) -> float:
    return float(np.max(np.abs(np.where(mask, a, 0.0))))


def fixed_point(
    mdp: TabularMDP,
    gamma: float,
    tau: float,
    operator: str = "soft",
    n_step: int = 1,
    entropy_bonus: bool = False,
    tol: float = 1e-10,
    max_iter: int = 100_000,
    window: int = 200,
    q0: Array | None = None,
) -> Solution:
    """The fixed point Q = T(Q) of the learner's expected target, by value iteration from q0 (0).

    T is `bellman_target` (module docstring). Iterates until max|T(Q) − Q| ≤ tol over valid pairs.
    A fixed point need not exist (γ = 1, or τ·log|A| outweighing the rewards: a soft policy that can
    stay alive for ever collects unbounded entropy), and for n > 1 or the boltzmann operator T need
    not contract. So the residual r_k = max|Q_{k+1} − Q_k| is watched, and converged=False is
    returned with the reason, never a number, when

    - the iterates become non-finite ("diverged");
    - r_k stops shrinking (relative change < 1e-3 over two windows of `window` sweeps, r_k > tol):
      "growing without bound" when max|Q| rises by about r_k per sweep (a linear drift), otherwise
      "not contracting" (an oscillation or stall);
    - r_k decays only polynomially, r_k ≈ c·k^−α with a stable α < 1.25 over three doublings of k
      from k ≥ 1024 (a contraction at rate ρ has a local exponent k·|log ρ|/log 2 that doubles with
      every doubling of k): Σ_k r_k diverges for α ≤ 1 (FrozenLake, γ = 1, soft: max|Q| grows like
      log k) and is still ≫ tol for α slightly above 1;
    - max_iter is reached, with the observed per-sweep rate and the sweeps it would still need.

    With γ < 1, n = 1 and op in {hard, soft, mellowmax}, T contracts at rate γ in the sup norm and
    none of these fire before convergence.
    """
    gamma = _check_gamma(gamma)
    tau = _check_tau(tau)
    get_operator(operator)
    if int(n_step) != n_step or n_step < 1:
        raise ValueError(f"n_step must be an integer >= 1, got {n_step}")
    if tol <= 0 or max_iter < 1 or window < 2:
        raise ValueError("tol must be > 0, max_iter >= 1 and window >= 2")
    mask = mdp.mask
    q = np.zeros(mask.shape) if q0 is None else np.array(q0, dtype=np.float64)
    if q.shape != mask.shape:
        raise ValueError(f"q0 must have shape [S, A] = {mask.shape}, got {q.shape}")
    q = np.where(mask, q, -np.inf)

    def target(x: Array) -> Array:
        return bellman_target(mdp, x, gamma, tau, operator, int(n_step), entropy_bonus)

    residual = float("inf")
    windows: list[_Checkpoint] = []  # every `window` sweeps
    doublings: list[_Checkpoint] = []  # at sweeps 1, 2, 4, 8, ...
    monotone = True  # Q_{k+1} − Q_k kept one sign since the first sweep
    sign = 0.0
    for it in range(1, max_iter + 1):
        q_new = target(q)
        if not np.all(np.isfinite(q_new[mask])):
            reason = f"diverged: non-finite values after {it} sweeps"
            return Solution(None, False, it, reason, residual)
        step = np.where(mask, q_new, 0.0) - np.where(mask, q, 0.0)
        residual = float(np.max(np.abs(step))) if step.size else 0.0
        q = q_new
        if residual <= tol:
            return Solution(q, True, it, f"residual {residual:.3g} <= tol {tol:g}", residual)
        if monotone:
            lo, hi = float(step.min()), float(step.max())
            now = 1.0 if lo >= 0 else (-1.0 if hi <= 0 else 0.0)
            monotone = now != 0.0 and sign in (0.0, now)
            sign = now
        point = _Checkpoint(it, residual, _sup_norm(q, mask))
        if it & (it - 1) == 0:
            doublings.append(point)
            reason = _polynomial(doublings, tol, monotone)
            if reason is not None:
                return Solution(None, False, it, reason, residual)
        if it % window == 0:
            windows.append(point)
            reason = _stalled(windows, window, tol)
            if reason is not None:
                return Solution(None, False, it, reason, residual)
    rate = _rate(windows)
    if rate is not None and rate < 1.0:
        need = int(np.ceil(np.log(tol / residual) / np.log(rate)))
        more = f"contracting at ≈{rate:.6f} per sweep, would need ≈{need} more sweeps"
    else:
        more = "not contracting"
    reason = f"max_iter={max_iter} reached with residual {residual:.3g} > tol {tol:g} ({more})"
    return Solution(None, False, max_iter, reason, residual)


class _Checkpoint(NamedTuple):
    sweep: int
    residual: float
    q_norm: float  # max|Q| over valid pairs


def _rate(checkpoints: list[_Checkpoint]) -> float | None:
    """Per-sweep residual ratio over the last window."""
    if len(checkpoints) < 2:
        return None
    (i0, r0, _), (i1, r1, _) = checkpoints[-2:]
    if r0 <= 0:
        return None
    return float((r1 / r0) ** (1.0 / (i1 - i0)))


def _stalled(checkpoints: list[_Checkpoint], window: int, tol: float) -> str | None:
    """A reason string when the residual has stopped shrinking over the last two windows."""
    if len(checkpoints) < 3:
        return None
    (_, r0, _), (_, r1, n1), (i2, r2, n2) = checkpoints[-3:]
    flat = all(abs(b - a) <= 1e-3 * max(a, b) for a, b in ((r0, r1), (r1, r2)))
    if not flat or r2 <= tol:
        return None
    growth = (n2 - n1) / window
    if growth >= 0.5 * r2:
        return (
            f"growing without bound: after {i2} sweeps max|T(Q) − Q| stays at {r2:.4g} per sweep "
            f"and max|Q| grew by {growth:.4g} per sweep (now {n2:.4g}); no fixed point reached"
        )
    return (
        f"not contracting: after {i2} sweeps the residual stays at {r2:.4g} per sweep while "
        f"max|Q| stays near {n2:.4g} (oscillation or stall); no fixed point reached"
    )


def _polynomial(doublings: list[_Checkpoint], tol: float, monotone: bool) -> str | None:
    """A reason string when the residual decays like k^−α with a stable α < 1.25 over the last three
    doublings of the sweep count k (from k ≥ 1024), instead of geometrically."""
    if len(doublings) < 4 or doublings[-4].sweep < 1024:
        return None
    pts = doublings[-4:]
    if any(p.residual <= 0 for p in pts):
        return None
    alphas = [float(np.log2(a.residual / b.residual)) for a, b in itertools.pairwise(pts)]
    if min(alphas) <= 0 or max(alphas) >= 1.25 or max(alphas) > 1.5 * min(alphas):
        return None
    k, r, norm = pts[-1]
    alpha = alphas[-1]
    tail = "infinite (α ≤ 1)" if alpha <= 1 else f"≈{r * k / (alpha - 1):.3g}"
    growth = (norm - pts[0].q_norm) / 3
    trend = f"max|Q| = {norm:.4g}"
    if monotone:
        trend = (
            f"the iterates move monotonically, max|Q| = {norm:.4g} and rising by ≈{growth:.3g} "
            f"per doubling of the sweeps" + (": growing without bound" if alpha <= 1 else "")
        )
    return (
        f"no contraction: after {k} sweeps the residual {r:.3g} decays only polynomially, like "
        f"k^-{alpha:.2f} (exponents {', '.join(f'{x:.2f}' for x in alphas)} over sweeps "
        f"{pts[0].sweep}..{k}); {trend}; power-law extrapolation of the remaining change: {tail}"
    )


def policy_q(mdp: TabularMDP, pi: Array, gamma: float, tau: float = 0.0) -> Solution:
    """The action values of a fixed stochastic policy π [S, A], by a sparse linear solve.

    Q(s, a) = r(s, a) + γ Σ_{s'} p(s'|s, a) Σ_{a'} π(a'|s') (Q(s', a') − τ·log π(a'|s')),

    i.e. (I − γ P_π) Q = r + γ P (τ·H(π)) with P_π[(s,a), (s',a')] = p(s'|s,a) π(a'|s'): the hard
    values at τ = 0 and the soft (entropy-regularised) values for τ > 0. π must be a distribution
    over the valid actions of each state. With γ < 1 the system is always non-singular; with γ = 1
    it is singular exactly when some valid pair cannot reach termination under π (an improper
    policy), which is checked on the transition graph and reported as converged=False.
    """
    gamma = _check_gamma(gamma)
    tau = _check_tau(tau)
    pi = np.asarray(pi, dtype=np.float64)
    mask = mdp.mask
    if pi.shape != mask.shape:
        raise ValueError(f"pi must have shape [S, A] = {mask.shape}, got {pi.shape}")
    if np.any(pi < 0) or np.any(np.abs(pi.sum(axis=1) - 1) > 1e-8):
        raise ValueError("pi must be a distribution over actions in every state")
    if np.any(pi[~mask] > 0):
        raise ValueError("pi puts mass on invalid actions (mdp.mask is False there)")
    n_states, n_actions = mask.shape
    valid = mask.ravel()
    idx = np.flatnonzero(valid)
    p_flat = sp.csr_matrix(mdp.p.reshape(-1, n_states))  # [(s,a), s']
    pi_lift = sp.csr_matrix(  # [s', (s',a')] = π(a'|s')
        (pi.ravel(), (np.repeat(np.arange(n_states), n_actions), np.arange(n_states * n_actions))),
        shape=(n_states, n_states * n_actions),
    )
    p_pi = (p_flat @ pi_lift).tocsr()[idx][:, idx]
    h = tau * entropy(pi) if tau > 0 else np.zeros(n_states)
    b = (mdp.r.ravel() + gamma * (p_flat @ h))[idx]
    if gamma == 1.0:
        stuck = _never_terminating(p_pi)
        if stuck.size:
            s, a = divmod(int(idx[stuck[0]]), n_actions)
            return Solution(
                None,
                False,
                0,
                f"singular: improper policy at gamma=1, {stuck.size} valid pairs never reach "
                f"termination under pi (e.g. s={s}, a={a}); their values are undefined/infinite",
            )
    system = (sp.identity(idx.size, format="csc") - gamma * p_pi).tocsc()
    try:
        x = spla.spsolve(system, b)
    except RuntimeError as err:  # pragma: no cover - SuperLU reports exact singularity this way
        return Solution(None, False, 0, f"singular: {err}")
    x = np.atleast_1d(x)
    if not np.all(np.isfinite(x)):
        return Solution(None, False, 0, "singular: the linear solve returned non-finite values")
    residual = float(np.max(np.abs(system @ x - b))) if x.size else 0.0
    if residual > 1e-6 * max(1.0, float(np.max(np.abs(x)))):
        return Solution(None, False, 0, f"ill-conditioned: residual {residual:.3g}", residual)
    q = np.full(n_states * n_actions, -np.inf)
    q[idx] = x
    return Solution(q.reshape(n_states, n_actions), True, 0, "linear solve", residual)


def _never_terminating(p_pi: sp.csr_matrix) -> Array:
    """Indices of the nodes of the sub-stochastic matrix p_pi from which no path leads to a node
    that leaks mass (terminates with positive probability): exactly the nodes on which the spectral
    radius of p_pi is 1."""
    n = p_pi.shape[0]
    leaks = np.asarray(1.0 - p_pi.sum(axis=1)).ravel() > 1e-12
    reach = leaks.copy()
    adjacency = (p_pi > 0).astype(np.int64).tocsr()
    while True:
        grown = reach | (adjacency @ reach.astype(np.int64) > 0)
        if (grown == reach).all():
            break
        reach = grown
    return np.flatnonzero(~reach) if n else np.zeros(0, dtype=int)


def greedy_policy(q: Array, mask: Array | None = None) -> Array:
    """The one-hot greedy policy of q over valid actions (ties to the lowest index)."""
    return boltzmann_policy(q, 0.0, mask)
