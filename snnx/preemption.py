"""Stop signals from a cluster scheduler: finish the step in hand, save, then stop (or let submitit requeue).

Slurm sends SIGTERM to a job it preempts or cancels, and the signal named with
``--signal`` shortly before the time limit (submitit's default is SIGUSR2, set
by ``SUBMITIT_PREEMPT_SIGNAL``; many sites use SIGUSR1). Saving from inside the
handler could catch an optimiser step half done, so the handler only records
the signal; the loop that owns the state checks :attr:`StopSignals.received`
at its next safe point (after a training batch, after a simulated batch),
saves a resume point, and calls :meth:`StopSignals.stop`.

``stop`` first hands the signal to the handler that was installed before: under
submitit that is its checkpoint-and-requeue handler, which requeues the job
(whose rerun resumes from the saved point) and exits the process. Otherwise —
a plain ``srun``/``sbatch`` job, a terminal — it raises :class:`Preempted`,
which the command line reports in one line and exits with 128 + the signal
number, as a shell does for a process the signal ended.
"""

from __future__ import annotations

import signal
import threading
from typing import Callable

# The signals a scheduler sends before it stops a job; those this platform lacks are skipped.
SIGNAL_NAMES = ("SIGTERM", "SIGUSR1", "SIGUSR2")


class Preempted(KeyboardInterrupt):
    """A stop signal, received and answered: ``saved`` says what was saved, ``resume`` where a rerun resumes.

    A KeyboardInterrupt, like Ctrl-C: whatever ends a run on Ctrl-C (a multirun's remaining jobs, the
    stage's clean-up) ends it here too; a job's ``except Exception`` does not swallow it."""

    def __init__(self, signum: int, saved: str, resume: str):
        super().__init__(signum, saved, resume)
        self.signum = int(signum)
        self.saved = saved
        self.resume = resume

    @property
    def signal_name(self) -> str:
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class StopSignals:
    """A context manager that records the first stop signal instead of dying of it.

    Installs its handler for :data:`SIGNAL_NAMES` on entry (main thread only: Python delivers signals
    there; elsewhere it records nothing and the signals keep their handlers) and puts the previous
    handlers back on exit. A signal whose handler was SIG_IGN stays ignored.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is not threading.main_thread():
            return self
        for name in SIGNAL_NAMES:
            signum = getattr(signal, name, None)
            if signum is None:
                continue
            previous = signal.getsignal(signum)
            if previous is signal.SIG_IGN:
                continue
            self._previous[signum] = previous
            signal.signal(signum, self._record)
        return self

    def __exit__(self, *exc) -> None:
        self._restore()

    def _record(self, signum: int, frame) -> None:
        if self.received is None:
            self.received = signum

    def _restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous = {}

    def stop(self, saved: str, resume: str) -> None:
        """Answer the received signal once the caller has saved: the previous handler's turn, then Preempted."""
        signum = self.received
        if signum is None:
            return
        previous = self._previous.get(signum)
        self._restore()
        if callable(previous):
            # submitit's handler requeues the job and exits; one that returns (its SIGTERM bypass, a helper
            # rank's) leaves the stop to us.
            handler: Callable = previous
            handler(signum, None)
        raise Preempted(signum, saved, resume)
