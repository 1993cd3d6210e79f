"""The store's file locks: the writers', the compactor's, the scheduler's and a job's.

A lock is an ``flock`` on an open file (``LockFileEx`` on Windows), taken through portalocker: two
processes, or two threads each holding its own :class:`FileLock`, exclude each other, and the
operating system gives a lock back when its holder dies, so a killed writer never leaves one
stale. The lock files stay in place (removing one while another process waits on it would let two
holders in).

portalocker rather than filelock: filelock's fork tracking and singleton bookkeeping cost several
times portalocker's lock and unlock, and every single-event append takes the writers' lock once
(docs/performance.md). Its ``lock``/``unlock`` on a descriptor this module opens, rather than its
``Lock`` object: the same ``flock``, without a text file opened and state kept per lock taken.
"""

from __future__ import annotations

import os
import time
from types import TracebackType
from typing import Self

import portalocker
from portalocker.exceptions import AlreadyLocked

#: Seconds between two tries while waiting for a lock held by another process.
POLL_S = 0.005

#: Raised when a lock stayed held by another holder past the timeout (``0``: held at the first try).
LockHeld = AlreadyLocked

_TRY = portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING
_WAIT = portalocker.LockFlags.EXCLUSIVE


class FileLock:
    """An exclusive lock on the file ``path`` (created, with its folder, when missing).

    Args:
        path: the lock file.
        timeout_s: seconds to wait for another holder to let go; ``0`` tries once, ``None`` waits
            as long as it takes (a blocking lock: woken by the release, not by polling).

    ``acquire``/``release`` or ``with``; :data:`LockHeld` when the timeout passes. Not reentrant:
    a holder taking the same file again through another object waits for itself.
    """

    __slots__ = ("_fd", "path", "timeout_s")

    def __init__(self, path: str | os.PathLike[str], timeout_s: float | None) -> None:
        self.path = os.fspath(path)
        self.timeout_s = timeout_s
        self._fd: int | None = None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except FileNotFoundError:     # its folder is missing: the first lock taken in this store
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            if self.timeout_s is None:
                portalocker.lock(fd, _WAIT)            # blocks in flock until the holder lets go
            else:
                deadline = time.monotonic() + self.timeout_s
                while True:
                    try:
                        portalocker.lock(fd, _TRY)
                        break
                    except AlreadyLocked:
                        if time.monotonic() >= deadline:
                            raise
                        time.sleep(POLL_S)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                portalocker.unlock(fd)
            finally:
                os.close(fd)

    @property
    def held(self) -> bool:
        """Does this object hold its lock now?"""
        return self._fd is not None

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
