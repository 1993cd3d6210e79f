"""The store's file locks: the writers', the compactor's, the scheduler's and a job's.

A lock is an ``flock`` on an open file (``LockFileEx`` on Windows), taken through portalocker: two
processes, or two threads each holding its own :class:`FileLock`, exclude each other, and the
operating system gives a lock back when its holder dies, so a killed writer never leaves one
stale. The lock files stay in place (removing one while another process waits on it would let two
holders in).

portalocker rather than filelock: one lock and unlock cost about 0.05 ms against filelock 4's
0.2 to 0.3 ms (its fork tracking and singleton bookkeeping), and every single-event append takes
the writers' lock once; see benchmarks/NOTES.md.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Self

import portalocker
from portalocker.exceptions import AlreadyLocked

#: Seconds between two tries while waiting for a lock held by another process.
POLL_S = 0.005

#: Raised when a lock stayed held by another holder past the timeout (``0``: held at the first try).
LockHeld = AlreadyLocked


class FileLock:
    """An exclusive lock on the file ``path`` (created, with its folder, when missing).

    Args:
        path: the lock file.
        timeout_s: seconds to wait for another holder to let go; ``0`` tries once, ``None`` waits
            as long as it takes (a blocking lock: woken by the release, not by polling).

    ``acquire``/``release`` or ``with``; :data:`LockHeld` when the timeout passes. Not reentrant:
    a holder taking the same file again through another object waits for itself.
    """

    __slots__ = ("_lock", "path")

    def __init__(self, path: str | os.PathLike[str], timeout_s: float | None) -> None:
        self.path = os.fspath(path)
        if timeout_s is None:
            self._lock = portalocker.Lock(self.path, mode="a", flags=portalocker.LockFlags.EXCLUSIVE)
        else:
            self._lock = portalocker.Lock(self.path, mode="a", timeout=timeout_s, check_interval=POLL_S,
                                          fail_when_locked=timeout_s <= 0)

    def acquire(self) -> None:
        try:
            self._lock.acquire()
        except FileNotFoundError:     # its folder is missing: the first lock taken in this store
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self._lock.acquire()

    def release(self) -> None:
        self._lock.release()

    @property
    def held(self) -> bool:
        """Does this object hold its lock now?"""
        return self._lock.fh is not None

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
