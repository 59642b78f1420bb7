"""Child processes that end, with everything they started, when the caller is done with them.

A child inherits ignored signals across exec: started from a shell that ignores SIGTERM and
SIGINT (`trap "" TERM INT`, nohup, some CI runners), `dagster dev` ignored the SIGTERM meant to
stop it (Dagster maps SIGTERM to SIGINT's handler, and that was "ignore"), and its webserver,
daemon and code servers outlived the check. `subprocess`'s `restore_signals` resets only SIGPIPE
and SIGXFSZ, so here each child resets SIGTERM and SIGINT to their defaults itself, before exec.

Each child leads a session of its own, so the group it starts can be stopped as one (SIGTERM,
then SIGKILL after a timeout) and then checked to be empty: a process left over is an error.
It also gets SIGTERM when the process that started it dies, even by SIGKILL (Linux's
PR_SET_PDEATHSIG; strictly, when the starting *thread* ends: start children from the main
thread, before other threads run, as `preexec_fn` wants anyway), so a killed caller does not
leave it running either. Linux only: /proc and prctl.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

_PR_SET_PDEATHSIG = 1
# loaded here, before any fork: the child should not open libraries between fork and exec
_LIBC = ctypes.CDLL(None, use_errno=True)
_RESET = (signal.SIGTERM, signal.SIGINT)


class LeftoverProcessesError(RuntimeError):
    """Processes of a stopped group still run: the stop did not work, and they are orphans now."""


@dataclass(frozen=True)
class Member:
    """One process of a group, as /proc shows it."""

    pid: int
    state: str
    command: str

    def __str__(self) -> str:
        return f"{self.pid} [{self.state}] {self.command}"


def _default_signals(parent: int) -> None:
    """Runs in the child between fork and exec: SIGTERM and SIGINT back to their defaults
    (neither ignored nor blocked), and SIGTERM when the parent dies."""
    for number in _RESET:
        signal.signal(number, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _RESET)
    _LIBC.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl: nobody would stop this child
        os._exit(1)


def members(session: int) -> list[Member]:
    """Every process, zombies included, whose process group or session is `session`: the
    children of a session leader keep one or the other unless they call setsid themselves."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes()
        except OSError:  # it ended while being read
            continue
        # the command name in parentheses may hold spaces: the fields after it are fixed
        state, _ppid, pgid, sid = stat[stat.rindex(")") + 2 :].split()[:4]
        if session in (int(pgid), int(sid)):
            command = argv.replace(b"\0", b" ").decode(errors="replace").strip()
            found.append(Member(int(entry.name), state, command or stat[: stat.rindex(")") + 1]))
    return found


def alive(session: int) -> list[Member]:
    """The members still running: a zombie has ended and waits only for its parent to read
    its exit status (an orphan's parent is init, which may be slow to)."""
    return [member for member in members(session) if member.state != "Z"]


class ProcessGroup(subprocess.Popen[bytes]):
    """A `Popen` of a command in a session of its own, with default SIGTERM/SIGINT, whose
    `terminate()` (also on leaving a `with` block) stops all it started: SIGTERM to the whole
    group, SIGKILL after `stop_timeout` seconds, then LeftoverProcessesError if any is left.
    A Popen, so that code written for one (`server.terminate()`) gets all of this unchanged."""

    def __init__(
        self,
        args: Sequence[str | os.PathLike[str]],
        *,
        name: str,
        stop_timeout: float = 30.0,
        **popen: Any,
    ) -> None:
        self.name = name
        self.stop_timeout = stop_timeout
        self.stopped = False
        self.stop_seconds = 0.0  # from SIGTERM to an empty group
        self.killed = False  # whether SIGTERM was not enough
        parent = os.getpid()
        super().__init__(
            args,
            start_new_session=True,  # leader of a new session and group: both ids are its pid
            preexec_fn=lambda: _default_signals(parent),  # start these before any thread
            **popen,
        )

    def _signal(self, number: int) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.pid, number)
        for member in alive(self.pid):  # any that left the group but not the session
            with suppress(ProcessLookupError):
                os.kill(member.pid, number)

    def _wait_empty(self, seconds: float) -> bool:
        """Reap the leader and wait until no member runs, polling until the deadline."""
        deadline = time.monotonic() + seconds
        while True:
            self.poll()
            if not alive(self.pid):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)

    def terminate(self) -> None:
        """SIGTERM to the group, SIGKILL to what is left after `stop_timeout`, then the proof
        that nothing is left: raises LeftoverProcessesError naming the survivors."""
        if self.stopped:
            return
        self.stopped = True
        started = time.monotonic()
        self._signal(signal.SIGTERM)
        if not self._wait_empty(self.stop_timeout):
            self.killed = True
            survivors = "\n  ".join(map(str, alive(self.pid)))
            print(
                f"{self.name}: still running {self.stop_timeout:.0f} s after SIGTERM, "
                f"sent SIGKILL:\n  {survivors}",
                flush=True,
            )
            self._signal(signal.SIGKILL)
            self._wait_empty(10)
        with suppress(subprocess.TimeoutExpired):
            self.wait(timeout=5)  # the leader has ended (a zombie at most): its exit status
        self.stop_seconds = time.monotonic() - started
        self._none_left()

    def kill(self) -> None:
        """SIGKILL to the whole group at once, as a machine lost whole would end it, then the
        proof that nothing is left."""
        self.stopped = True
        self._signal(signal.SIGKILL)
        self._wait_empty(30)
        with suppress(subprocess.TimeoutExpired):
            self.wait(timeout=5)
        self._none_left()

    def _none_left(self) -> None:
        left = alive(self.pid)
        if left:
            raise LeftoverProcessesError(
                f"{self.name} (session {self.pid}) left processes running:\n  "
                + "\n  ".join(map(str, left))
            )

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            self.terminate()
        finally:
            super().__exit__(kind, error, trace)  # closes the pipes, if any; reaps the leader
