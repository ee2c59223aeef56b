"""Running the real entry point in a subprocess, as a user would."""

import os
import subprocess
import sys
from pathlib import Path

FAST = [  # a run of a few seconds: tiny network, few steps
    "total_steps=600",
    "buffer.learning_starts=100",
    "batch_size=32",
    "network.hidden_sizes=[16]",
    "eval.every=300",
    "eval.episodes=2",
    "logger.every=200",
]


def softq_train(
    *overrides: str,
    cwd: Path,
    timeout: float = 300,
    prog: tuple[str, ...] = (sys.executable, "-m", "softq_lab.run.train"),
) -> subprocess.CompletedProcess:
    """Run softq-train (by default this interpreter's; `prog`: another command, e.g. an installed
    `softq-train` script) with offline wandb on the CPU."""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "JAX_PLATFORMS": "cpu"}
    return subprocess.run(
        [*prog, *overrides],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wandb_records(run_dir: Path) -> list:
    """Every record (`wandb.proto` Record) of the offline wandb runs in `run_dir`, in the order
    written. wandb 0.31 keeps an offline run in one `run-<id>.wandb` file: a 7-byte header, then
    LevelDB-log records (32 KiB blocks of [crc32, length, type] chunks)."""
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    block, full, first, last = 32 * 1024, 1, 2, 4
    records = []
    for path in sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb")):
        data, pos, parts = path.read_bytes(), 7, b""
        while pos + 7 <= len(data):
            if block - pos % block < 7:  # a block's tail too short for a header is padding
                pos += block - pos % block
                continue
            _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
            chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
            parts = chunk if kind in (full, first) else parts + chunk
            if kind in (full, last):
                record = pb.Record()
                record.ParseFromString(parts)
                records.append(record)
    return records
