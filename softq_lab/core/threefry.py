"""Threefry-2x32 lowered without a loop on the CPU: the same bits, far fewer kernels per draw.

JAX lowers its counter-based hash `threefry2x32` on the CPU as a rolled 5-iteration `fori_loop`
(to keep compile times of large programs short). Inside the drivers' scans every random draw
(acting, auto-reset, replay sampling, key splits) then becomes an XLA while loop of some thirty tiny
kernels, and on small networks those launches cost about a fifth of an env step (measured:
workload A of `benchmarks/sweep_speed.py`, 479 → 223 kernels per device-driver env step).

`use_unrolled_on_cpu()` registers the straight-line form for the CPU. It is the same function
(Threefry-2x32 with 20 rounds; Salmon, Moraes, Dror & Shaw 2011, "Parallel random numbers: as easy
as 1, 2, 3"), so every key, split and draw is bit-for-bit what JAX computes by default
(`tests/test_threefry.py` checks the published known answers and JAX's own rolled lowering).
Other platforms keep JAX's lowering. Importing `softq_lab.core` registers it.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.extend.random import threefry2x32_p
from jax.interpreters import mlir

ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))  # left rotations of the even / odd groups of 4 rounds
PARITY = np.uint32(0x1BD11BDA)  # the key schedule's third word: k1 ^ k2 ^ PARITY


def _rotate_left(x: jax.Array, r: int) -> jax.Array:
    return jax.lax.shift_left(x, np.uint32(r)) | jax.lax.shift_right_logical(x, np.uint32(32 - r))


def threefry2x32(
    k1: jax.Array, k2: jax.Array, x1: jax.Array, x2: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Threefry-2x32-20 of the counter words (x1, x2) under the key (k1, k2), all uint32.

    Five groups of four rounds (x1 += x2; x2 = rotl(x2, r) ^ x1), each group followed by the
    injection of the key schedule ks = (k1, k2, k1 ^ k2 ^ PARITY) rotated by one, plus its number.
    """
    ks = (k1, k2, k1 ^ k2 ^ PARITY)
    x1, x2 = x1 + ks[0], x2 + ks[1]
    for group in range(5):
        for r in ROTATIONS[group % 2]:
            x1 = x1 + x2
            x2 = _rotate_left(x2, r) ^ x1
        x1 = x1 + ks[(group + 1) % 3]
        x2 = x2 + ks[(group + 2) % 3] + np.uint32(group + 1)
    return x1, x2


def use_unrolled_on_cpu() -> None:
    """Lower `threefry2x32` on the CPU as straight-line code (idempotent, process-wide)."""
    mlir.register_lowering(
        threefry2x32_p,
        mlir.lower_fun(threefry2x32, multiple_results=True),
        platform="cpu",
        inline=False,
    )
