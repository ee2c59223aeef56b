"""Stop requests: a signal asks the driver to checkpoint and stop, instead of killing it mid-step.

    with StopSignals() as stop:
        ... the driver polls `stop.requested` between steps (or chunks) ...
    stop.forward()   # after the runs' files are closed: hand a preemption on to submitit

SIGINT (Ctrl-C) and SIGTERM (`kill`, `scancel`, SLURM at the time limit) end a run as `killed`;
SIGUSR1 and SIGUSR2 (the preemption warnings of SLURM `--signal` and submitit) as `preempted`. A second
SIGINT raises KeyboardInterrupt at once, for a user who does not want to wait for the checkpoint.
If a preemption signal had a Python handler before (submitit's checkpoint-and-requeue), `forward`
calls it once the runs are saved, so the job is requeued and resumes.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

STATUS = {
    signal.SIGINT: "killed",
    signal.SIGTERM: "killed",
    signal.SIGUSR1: "preempted",
    signal.SIGUSR2: "preempted",
}


class StopSignals:
    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> str | None:
        """`killed` or `preempted` once a stop signal arrived, else None."""
        return None if self.signum is None else STATUS[signal.Signals(self.signum)]

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # handlers live in the main thread
            for signum in STATUS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def forward(self) -> None:
        """Call the handler the stop signal had before (e.g. submitit's requeue), if it had one."""
        previous: Callable | None = self._previous.get(self.signum) if self.signum else None
        if self.requested == "preempted" and callable(previous):
            previous(self.signum, None)

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number."""
        return 128 + (self.signum or 0)
