"""The store's file locks: threads and processes exclude each other, a killed holder frees its lock,
a waiter is woken by the release, and a held lock turns into StoreBusy for the caller."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from store import Store
from store.errors import StoreBusy
from store.locks import FileLock, LockHeld
from store.repair import repair

ROOT = Path(__file__).resolve().parents[2]


def _holder(path: Path, hold_s: float, done: Path | None = None) -> subprocess.Popen[str]:
    """Another process taking the lock file ``path``, saying so, holding it ``hold_s`` seconds
    (then creating the file ``done``, if given, before it lets go)."""
    finish = f"    open({str(done)!r}, 'w').close()\n" if done else ""
    proc = subprocess.Popen(
        [sys.executable, "-c", f"import time\nfrom store.locks import FileLock\n"
                               f"with FileLock({str(path)!r}, 0):\n"
                               f"    print('held', flush=True)\n    time.sleep({hold_s})\n{finish}"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_the_lock_folder_is_made_by_the_first_lock(tmp_path: Path) -> None:
    path = tmp_path / "new" / "_lock" / "append.lock"
    with FileLock(path, 0):
        assert path.is_file()


def test_two_threads_each_with_its_own_lock_exclude_each_other(tmp_path: Path) -> None:
    """flock belongs to the open file, not the process (a POSIX record lock would let both in)."""
    path = tmp_path / "a.lock"
    inside: list[int] = []
    overlaps: list[int] = []

    def work(n: int) -> None:
        for _ in range(50):
            with FileLock(path, 10.0):
                inside.append(n)
                if len(inside) > 1:
                    overlaps.append(n)
                time.sleep(0.0005)
                inside.remove(n)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == [] and inside == []

    held = FileLock(path, 0)
    held.acquire()
    try:
        other = FileLock(path, 0)
        with pytest.raises(LockHeld):
            other.acquire()
        assert held.held and not other.held
    finally:
        held.release()
    assert not held.held
    with FileLock(path, 0):      # given back
        pass


def test_a_timeout_waits_its_while_then_gives_up(tmp_path: Path) -> None:
    path = tmp_path / "a.lock"
    holder = _holder(path, 60)
    try:
        started = time.monotonic()
        with pytest.raises(LockHeld):
            FileLock(path, 0.3).acquire()
        assert time.monotonic() - started >= 0.3
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    path = tmp_path / "a.lock"
    holder = _holder(path, 60)
    with pytest.raises(LockHeld):
        FileLock(path, 0).acquire()
    holder.kill()
    holder.wait()
    with FileLock(path, 0):
        assert path.is_file()       # the file stays: removing it could let two holders in


def test_a_waiter_without_timeout_is_woken_by_the_release(tmp_path: Path) -> None:
    path, done = tmp_path / "a.lock", tmp_path / "done"
    holder = _holder(path, 0.5, done)
    try:
        with FileLock(path, None):
            assert done.exists()                      # taken only once the holder had finished
        assert holder.wait(timeout=10) == 0
    finally:
        holder.kill()
        holder.wait()


def test_a_store_held_by_another_process_is_busy_past_the_timeout(tmp_path: Path) -> None:
    store = Store.create(tmp_path / "s")
    holder = _holder(store.root / "_lock" / "append.lock", 60)
    try:
        with pytest.raises(StoreBusy):
            repair(store, timeout_s=0.2)
    finally:
        holder.kill()
        holder.wait()
    assert repair(store, timeout_s=0.2).remaining == []
