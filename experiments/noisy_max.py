"""The max of noisy estimates (Thrun & Schwartz 1993; van Hasselt 2010): the bias of each backup
operator on M actions whose true values are all 0, seen through unbiased N(0, 1) noise.

    python experiments/noisy_max.py                      # 10⁶ draws per M, into results/noisy_max/
    python experiments/noisy_max.py --quick              # 20,000 draws: a check of the pipeline
    python experiments/noisy_max.py --draws N --out DIR --seed S

With X = (X_1, …, X_M) iid N(0, 1) (the noisy estimates of M true values 0) and op one of the
project's operators (`softq_lab.core.operators`), the bias is E[op(X)] − op(0), op(0) the noiseless
value: 0 for the hard max, mellowmax, Boltzmann and the double estimator, τ·log M for log-sum-exp.
Each E[op(X)] is estimated twice:

- Monte-Carlo: the project's operators (float32 JAX) on `draws` rows of X, in chunks of 100,000 rows,
  mean and standard error accumulated in float64;
- exact: by numerical integration (scipy.integrate.quad), with φ, Φ the N(0, 1) density and cdf:
    hard max    E[max X] = ∫ x · M φ(x) Φ(x)^{M−1} dx;
    log-sum-exp with Y = Σ_i e^{X_i/τ} and Frullani's log y = ∫_0^∞ (e^{−t} − e^{−ty}) dt/t (y > 0),
                E[τ log Y] = τ ∫ (exp(−e^u) − L(u)^M) du  (t = e^u),  L(u) = E[exp(−e^{u + X/τ})],
                the inner expectation a 1-D integral over x, since the X_i are independent;
    mellowmax   = log-sum-exp − τ·log M (so its bias equals log-sum-exp's at the same τ);
    Boltzmann   Σ_i X_i w_i / Σ_j w_j with w = e^{X/τ}; by symmetry and 1/(a + R) = ∫_0^∞ e^{−t(a+R)} dt,
                E = M ∫ K(u) · L(u)^{M−1} du,  K(u) = E[X s e^{−s}],  s = e^{u + X/τ};
    double      Q_B[argmax Q_A], Q_A and Q_B independent draws of X: by independence
                E = Σ_i P(argmax Q_A = i) · E[Q_B,i] = M ∫ φ Φ^{M−1} dx · ∫ x φ(x) dx = 0.

Writes into --out (default results/noisy_max/), each file atomically (a temporary file, then
os.replace): `noisy_max.csv`, one tidy row per (operator, τ, M) with columns CSV_COLUMNS, z being
(mc_mean − exact)/mc_se; and `noisy_max.png`, the bias against M per operator (Monte-Carlo points
with ±1.96 SE bars, exact lines) and the z-scores against the ±3 band.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import integrate

from softq_lab.core import operators as ops

MS: tuple[int, ...] = (2, 4, 10, 100)
# (operator, τ): τ = 0 for the two that have none; mellowmax ω = 1/τ, Boltzmann β = 1/τ.
CONFIGS: tuple[tuple[str, float], ...] = (
    ("hard", 0.0), ("double", 0.0),
    ("soft", 0.1), ("soft", 0.5), ("soft", 1.0),
    ("mellowmax", 1.0),
    ("boltzmann", 0.1), ("boltzmann", 0.5), ("boltzmann", 1.0),
)  # fmt: skip
CSV_COLUMNS: tuple[str, ...] = ("operator", "tau", "M", "draws", "mc_mean", "mc_se", "exact",
                                "noiseless", "bias_mc", "bias_exact", "z")  # fmt: skip
DRAWS, QUICK_DRAWS, CHUNK = 1_000_000, 20_000, 100_000
OUT = Path("results/noisy_max")

# ---------------------------------------------------------------------------- exact expectations

_X = 12.0  # |x| beyond 12 carries φ-mass < 1e-32: far below any tolerance here
_SQRT_2PI = math.sqrt(2.0 * math.pi)


def _phi(x: float) -> float:
    """The N(0, 1) density φ(x)."""
    return math.exp(-0.5 * x * x) / _SQRT_2PI


def _cdf(x: float) -> float:
    """The N(0, 1) cdf Φ(x)."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _quad(f: Callable[[float], float], a: float, b: float, points: Sequence[float] = ()) -> float:
    """∫_a^b f by adaptive Gauss–Kronrod (scipy.integrate.quad), break points inside (a, b)."""
    inside = sorted({p for p in points if a < p < b})
    value, _ = integrate.quad(f, a, b, points=inside or None, limit=500,
                              epsabs=1e-12, epsrel=1e-10)  # fmt: skip
    return value


def hard_exact(m: int) -> float:
    """E[max_i X_i] = ∫ x · M φ(x) Φ(x)^{M−1} dx (the max's density is M φ Φ^{M−1})."""
    return _quad(lambda x: x * m * _phi(x) * _cdf(x) ** (m - 1), -_X, _X, points=(0.0, 1.0, 2.0))


def _exp_neg_exp(z: float) -> float:
    """exp(−e^z), 0 once e^z overflows."""
    return 0.0 if z > 700.0 else math.exp(-math.exp(z))


@functools.cache
def log_laplace(u: float, tau: float) -> float:
    """log L(u), L(u) = E[exp(−e^{u + X/τ})] = ∫ φ(x) exp(−e^{u + x/τ}) dx: the Laplace transform
    of e^{X/τ} at t = e^u. Integrated as 1 − L (with −expm1) while L > ½, so that log L ≈ −(1 − L)
    keeps its precision where L^M (M up to 100) is still far from 0; the integrand steps at x = −uτ."""
    step = (-u * tau,)
    one_minus = _quad(lambda x: _phi(x) * -math.expm1(-math.exp(min(u + x / tau, 700.0))),
                      -_X, _X, step)  # fmt: skip
    if one_minus < 0.5:
        return math.log1p(-one_minus)
    laplace = _quad(lambda x: _phi(x) * _exp_neg_exp(u + x / tau), -_X, _X, step)
    return math.log(laplace) if laplace > 0.0 else -math.inf


def _u_range(tau: float) -> tuple[float, float, tuple[float, ...]]:
    """Limits and break points for the outer integrals over u = log t: the integrands live where
    e^u·Y ≈ 1, i.e. u ≈ −max_i X_i/τ, so |u| ≤ 12/τ + 40 is the whole of it."""
    span = _X / tau + 40.0
    return -span, span, tuple(-x / tau for x in (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0))


def soft_exact(m: int, tau: float) -> float:
    """E[τ log Σ_i e^{X_i/τ}] = τ ∫ (exp(−e^u) − L(u)^M) du (Frullani's integral for log Y with
    t = e^u, and E[e^{−tY}] = L^M by independence)."""
    lo, hi, points = _u_range(tau)
    integrand = lambda u: _exp_neg_exp(u) - math.exp(m * log_laplace(u, tau))  # noqa: E731
    return tau * _quad(integrand, lo, hi, points)


def mellowmax_exact(m: int, tau: float) -> float:
    """E[τ log((1/M) Σ_i e^{X_i/τ})] = E[log-sum-exp] − τ·log M."""
    return soft_exact(m, tau) - tau * math.log(m)


def _boltzmann_kernel(u: float, tau: float) -> float:
    """K(u) = E[X s e^{−s}], s = e^{u + X/τ}: a bump in x around x = −uτ, of width ~τ."""

    def integrand(x: float) -> float:
        z = u + x / tau
        return 0.0 if z > 700.0 else _phi(x) * x * math.exp(z - math.exp(z))

    return _quad(integrand, -_X, _X, (-u * tau,))


def boltzmann_exact(m: int, tau: float) -> float:
    """E[Σ_i X_i w_i / Σ_j w_j], w = e^{X/τ}, = M·E[X_1 w_1/(w_1 + R)], R = Σ_{j≥2} w_j; writing
    1/(w_1 + R) = ∫_0^∞ e^{−t(w_1 + R)} dt and t = e^u: M ∫ K(u)·L(u)^{M−1} du."""
    lo, hi, points = _u_range(tau)

    def integrand(u: float) -> float:
        rest = 1.0 if m == 1 else math.exp((m - 1) * log_laplace(u, tau))
        return _boltzmann_kernel(u, tau) * rest

    return m * _quad(integrand, lo, hi, points)


def double_exact(m: int) -> float:
    """E[Q_B[argmax Q_A]] = Σ_i P(argmax Q_A = i)·E[Q_B,i] = (M ∫ φ Φ^{M−1} dx)·(∫ x φ(x) dx) = 1·0."""
    p_argmax = _quad(lambda x: _phi(x) * _cdf(x) ** (m - 1), -_X, _X, (0.0, 1.0, 2.0))
    return m * p_argmax * _quad(lambda x: x * _phi(x), -_X, _X, (0.0,))


def exact(operator: str, tau: float, m: int) -> float:
    """E[op(X)] for X of M iid N(0, 1), by numerical integration."""
    if operator == "hard":
        return hard_exact(m)
    if operator == "double":
        return double_exact(m)
    if operator == "soft":
        return soft_exact(m, tau)
    if operator == "mellowmax":
        return mellowmax_exact(m, tau)
    if operator == "boltzmann":
        return boltzmann_exact(m, tau)
    raise ValueError(f"operator={operator!r}: must be one of {sorted({o for o, _ in CONFIGS})}")


def noiseless(operator: str, tau: float, m: int) -> float:
    """op(0, …, 0): τ·log M for log-sum-exp, 0 for every other operator here."""
    return tau * math.log(m) if operator == "soft" else 0.0


# ------------------------------------------------------------------------------------ Monte-Carlo


@functools.cache
def _jitted(operator: str) -> Callable[..., jax.Array]:
    """The project's operator as a jitted (q, q_b, τ) -> [rows]; q_b (an independent second
    estimate) is used by the double estimator only, whose value is q_b at q's argmax (τ = 0)."""
    if operator == "double":
        return jax.jit(lambda q, q_b, tau: ops.double_value(q_b, q, tau, "boltzmann"))
    op = ops.get(operator)
    return jax.jit(lambda q, q_b, tau: op(q, tau))


def op_values(operator: str, tau: float, q: np.ndarray, q_b: np.ndarray) -> np.ndarray:
    """op(q) row by row (float64 copy of the float32 result)."""
    return np.asarray(_jitted(operator)(q, q_b, np.float32(tau)), dtype=np.float64)


class RunningMoments:
    """Count, mean and sum of squared deviations merged chunk by chunk in float64 (Chan et al.)."""

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, values: np.ndarray) -> None:
        n_b, mean_b = values.size, float(values.mean())
        m2_b = float(((values - mean_b) ** 2).sum())
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta**2 * self.n * n_b / n
        self.n = n

    @property
    def se(self) -> float:
        """Standard error of the mean, sqrt(var/n) with the unbiased variance."""
        return math.sqrt(self.m2 / (self.n - 1) / self.n)


def _chunks(draws: int, chunk: int) -> Iterator[int]:
    """Row counts summing to `draws`, each at most `chunk`."""
    for start in range(0, draws, chunk):
        yield min(chunk, draws - start)


Config = tuple[str, float]  # (operator, τ)


def monte_carlo(m: int, draws: int, seed: int, chunk: int = CHUNK,
                configs: Sequence[Config] = CONFIGS) -> dict[Config, RunningMoments]:  # fmt: skip
    """Per (operator, τ), the moments of op(X) over `draws` rows X of M iid N(0, 1) (and, for the
    double estimator, an independent second row). Every operator sees the same rows (common random
    numbers); the stream depends on (seed, M) only."""
    rng = np.random.default_rng([seed, m])
    moments = {config: RunningMoments() for config in configs}
    for rows in _chunks(draws, chunk):
        q = rng.standard_normal((rows, m), dtype=np.float32)
        q_b = rng.standard_normal((rows, m), dtype=np.float32)
        for (operator, tau), acc in moments.items():
            acc.add(op_values(operator, tau, q, q_b))
    return moments


# ------------------------------------------------------------------------------------------ table


def results_table(draws: int, seed: int = 0, ms: Sequence[int] = MS,
                  configs: Sequence[tuple[str, float]] = CONFIGS) -> pd.DataFrame:  # fmt: skip
    """One tidy row per (operator, τ, M): Monte-Carlo mean and SE, exact expectation, noiseless
    value, both biases, and z = (mc_mean − exact)/mc_se."""
    rows = []
    for m in ms:
        moments = monte_carlo(m, draws, seed, configs=configs)
        for (operator, tau), acc in moments.items():
            value, base = exact(operator, tau, m), noiseless(operator, tau, m)
            rows.append({"operator": operator, "tau": tau, "M": m, "draws": draws,
                         "mc_mean": acc.mean, "mc_se": acc.se, "exact": value, "noiseless": base,
                         "bias_mc": acc.mean - base, "bias_exact": value - base,
                         "z": (acc.mean - value) / acc.se})  # fmt: skip
    order = {config: i for i, config in enumerate(configs)}
    table = pd.DataFrame(rows, columns=list(CSV_COLUMNS))
    key = table.apply(lambda r: order[(r["operator"], r["tau"])], axis=1)
    return table.assign(_k=key).sort_values(["_k", "M"]).drop(columns="_k").reset_index(drop=True)


# ----------------------------------------------------------------------------------------- figure

_PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("hard max and double estimator", ("hard", "double")),
    ("log-sum-exp (against τ·log M) and mellowmax", ("soft", "mellowmax")),
    ("Boltzmann softmax", ("boltzmann",)),
)


def _label(operator: str, tau: float) -> str:
    """A legend label: the operator and its τ (ω = β = 1/τ)."""
    names = {"hard": "hard max", "double": "double estimator", "soft": "log-sum-exp",
             "mellowmax": "mellowmax", "boltzmann": "Boltzmann"}  # fmt: skip
    return names[operator] + (f" τ={tau:g}" if tau > 0 else "")


def figure(table: pd.DataFrame, path: Path) -> None:
    """Bias against M (log x) per operator family: Monte-Carlo points with ±1.96 SE bars, exact
    integrals as lines; and a fourth panel of z = (MC − exact)/SE with the ±3 band."""
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5), dpi=100)
    configs = list(dict.fromkeys(zip(table["operator"], table["tau"], strict=True)))
    colours = dict(zip(configs, plt.cm.tab10.colors, strict=False))
    hard_rows = table[table["operator"] == "hard"]
    top = float((table["bias_mc"] + 1.96 * table["mc_se"]).max())
    y_range = (min(-0.1, float(table["bias_mc"].min()) - 0.1), top + 0.15)
    for ax, (title, family) in zip(axes.flat, _PANELS, strict=False):
        if "hard" not in family and len(hard_rows):
            ax.plot(hard_rows["M"], hard_rows["bias_exact"], "--", color="grey", lw=0.8,
                    label="hard max (exact)")  # fmt: skip
        for operator, tau in configs:
            if operator not in family:
                continue
            rows = table[(table["operator"] == operator) & (table["tau"] == tau)]
            colour, open_marker = colours[(operator, tau)], operator in ("mellowmax", "double")
            ax.plot(rows["M"], rows["bias_exact"], "-", color=colour, lw=1.2)
            ax.errorbar(rows["M"], rows["bias_mc"], yerr=1.96 * rows["mc_se"], fmt="o", ms=6,
                        color=colour, mfc="none" if open_marker else colour, capsize=3,
                        label=_label(operator, tau))  # fmt: skip
        ax.axhline(0.0, color="grey", lw=0.6)
        ax.set(xscale="log", xlabel="M actions", ylabel="bias  E[op(X)] − op(0)", title=title,
               ylim=y_range)  # fmt: skip
        ax.set_xticks(MS, [str(m) for m in MS])
        ax.legend(fontsize=8, loc="upper left")
    ax = axes.flat[3]
    for i, (operator, tau) in enumerate(configs):
        rows = table[(table["operator"] == operator) & (table["tau"] == tau)]
        jitter = 1.0 + 0.03 * (i - len(configs) / 2)
        ax.plot(rows["M"] * jitter, rows["z"], "o", ms=4, color=colours[(operator, tau)])
    ax.axhspan(-3, 3, color="grey", alpha=0.15, lw=0)
    ax.axhline(0.0, color="grey", lw=0.6)
    ax.set(xscale="log", xlabel="M actions", ylabel="z = (MC − exact) / SE", ylim=(-4.5, 4.5),
           title="MC against exact: z, colours as above")  # fmt: skip
    ax.set_xticks(MS, [str(m) for m in MS])
    draws = int(table["draws"].iloc[0])
    fig.suptitle(f"Bias of backup operators on M true values 0 under N(0, 1) noise ({draws:,} draws; "
                 "bars ±1.96 SE, lines exact)", fontsize=11)  # fmt: skip
    fig.tight_layout()
    _write_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)


# ------------------------------------------------------------------------------------------- main


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """write(tmp) to a temporary file beside `path`, then os.replace it onto `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _draw_count(text: str) -> int:
    """argparse type: an integer ≥ 2 (a standard error needs two draws); 1_000_000 is accepted."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"{value} < 2 (a standard error needs two draws)")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """--draws N | --quick, --out DIR, --seed S; bad input exits 2 with a one-line message."""
    parser = argparse.ArgumentParser(prog="noisy_max.py", description=__doc__.splitlines()[0])
    draws = parser.add_mutually_exclusive_group()
    draws.add_argument("--draws", type=_draw_count, default=DRAWS,
                       help=f"Monte-Carlo rows per M (default {DRAWS:_})")  # fmt: skip
    draws.add_argument("--quick", action="store_const", dest="draws", const=QUICK_DRAWS,
                       help=f"{QUICK_DRAWS:_} draws: checks the pipeline end to end")  # fmt: skip
    parser.add_argument("--out", type=Path, default=OUT, help=f"output folder (default {OUT})")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the Monte-Carlo and the integrals, write the CSV and the figure, print the table."""
    args = parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        print(f"noisy_max.py: error: --out {args.out} is not a directory", file=sys.stderr)
        return 2
    start = time.perf_counter()
    table = results_table(args.draws, args.seed)
    csv = args.out / "noisy_max.csv"
    _write_atomic(csv, lambda tmp: table.to_csv(tmp, index=False, float_format="%.10g"))
    figure(table, args.out / "noisy_max.png")
    with pd.option_context("display.width", 200, "display.max_rows", 100):
        print(table.drop(columns=["draws"]).round(5).to_string(index=False))
    worst = table["z"].abs().max()
    print(f"{args.draws:,} draws per M; max |z| = {worst:.2f}; {time.perf_counter() - start:.0f} s; "
          f"wrote {csv} and {args.out / 'noisy_max.png'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
