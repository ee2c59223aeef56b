"""The CPU's straight-line threefry is JAX's threefry, bit for bit, without a loop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax._src.random.threefry2x32 import _threefry2x32_lowering  # JAX's own, as the reference

import softq_lab.core  # noqa: F401  (registers the CPU lowering)
from softq_lab.core.threefry import threefry2x32

U32 = np.uint32


@pytest.mark.parametrize(
    "key, count, expected",
    [  # known answers of Threefry-2x32-20 published with Random123 (Salmon et al. 2011)
        ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
        ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
        ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
    ],
)
def test_known_answers(key, count, expected):
    out = jax.jit(threefry2x32)(*map(U32, key), *map(U32, count))
    assert tuple(int(x) for x in out) == expected
    # and through the registered primitive, which every jax.random call on the CPU now uses
    out = jax.extend.random.threefry_2x32(jnp.asarray(key, U32), jnp.asarray(count, U32))
    assert tuple(int(x) for x in out) == expected


def test_equals_jax_rolled_lowering_on_random_words():
    rng = np.random.default_rng(0)
    words = [rng.integers(0, 2**32, size=1000, dtype=np.uint64).astype(U32) for _ in range(4)]
    mine = jax.jit(threefry2x32)(*words)
    rolled = jax.jit(lambda *w: _threefry2x32_lowering(*w, use_rolled_loops=True))(*words)
    for a, b in zip(mine, rolled, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_random_draws_compile_without_a_loop():
    hlo = jax.jit(lambda k: jax.random.bits(k, (8,))).lower(jax.random.key(0)).compile().as_text()
    assert " while(" not in hlo
