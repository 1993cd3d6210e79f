"""Where a store's files live, behind one small interface: a local folder or an object store.

A store chooses its :class:`Backend` once, from its root (:func:`backend_for`), and touches its
files only through it: list a log's files, publish a commit, read or delete a file, write a
manifest, the locks. The two backends keep the same contract (one test suite runs against both:
``tests/store/contract.py``):

- :class:`LocalBackend`: temporary file, fsync, rename, folder fsync (``store.layout``); file
  locks; a change token per log, so that a listing can be kept between commits.
- :class:`S3Backend` (``s3://bucket/prefix``, see :mod:`store.objects`): a publish is one PUT
  of the final object under a name new by construction, sent as a conditional put
  (``If-None-Match: *``) so that no writer can ever overwrite another's object; no writers' lock
  (two racing writers may both write an event, and every reader keeps each id once); every
  listing is fresh; files are staged on this machine, never in the bucket.

Example:
    >>> from store import Store
    >>> s = Store.create("s3://acme-metrics/prod")      # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from store.errors import StorePathRefused
from store.layout import CHANGE_TOKEN, atomic_write, fsync_dir
from store.locks import FileLock
from store.objects import ObjectFiles, ObjectPath, ObjectStat

__all__ = ["Backend", "LocalBackend", "ObjectFiles", "ObjectPath", "ObjectStat", "S3Backend", "attach",
           "backend_for", "local_root", "local_state", "object_root", "object_uri", "staging_path"]


class Backend(Protocol):
    """The operations a store makes on its files. ``name`` arguments are relative to the root
    (``events/<file>``, ``_compaction/<id>.json``); ``folder`` is one of the root's folders."""

    @property
    def root(self) -> Path | ObjectPath:
        """The store's root: a ``Path``, or an :class:`ObjectPath` (its URI, answering the
        pathlib calls a reader makes)."""

    @property
    def keeps_listing(self) -> bool:
        """Can a listing be kept between calls (a change token tells when it is stale)?"""

    @property
    def compacts_after_commit(self) -> bool:
        """Does a commit trigger compaction by itself (file locks and renames: local only)?"""

    @property
    def folder(self) -> Path | None:
        """The store's folder on this machine, None on object storage (no renames, no file locks,
        no place for snapshots or a catalog file beside the log)."""

    def path(self, folder: str, name: str) -> Path | ObjectPath: ...
    def list_names(self, folder: str) -> list[str]: ...
    def entries(self, folder: str) -> list[Path] | list[ObjectPath]: ...
    def size(self, folder: str, name: str) -> int | None: ...
    def exists(self, name: str) -> bool: ...
    def read_text(self, name: str) -> str: ...
    def write_new(self, name: str, data: bytes, *, tmp_prefix: str = ".") -> None: ...
    def delete(self, name: str) -> None: ...
    def init(self, marker: str, marker_body: bytes, folders: Iterable[str]) -> None: ...
    def writers_lock(self, timeout_s: float) -> AbstractContextManager[Any]: ...
    def compactor_lock(self, timeout_s: float | None) -> FileLock: ...
    def staging_path(self, commit_id: str) -> Path: ...
    def scratch(self) -> Path: ...
    def clean_staging(self) -> list[str]: ...
    def publish_file(self, tmp: str | Path, table: str, name: str) -> Path | ObjectPath: ...
    def publish_bytes(self, body: Any, table: str, name: str, staged: str,
                      before: Callable[[], None]) -> Path | ObjectPath: ...
    def change_token(self, table: str) -> bytes: ...
    def changing(self, table: str) -> tuple[bytes, bytes]: ...
    def mtime_ns(self, folder: str) -> int | None: ...
    def attach(self, con: Any) -> None: ...


class LocalBackend:
    """A store in a local folder."""

    keeps_listing = True
    compacts_after_commit = True

    def __init__(self, root: Path) -> None:
        self.root = root
        self._text: dict[str, str] = {}

    @property
    def folder(self) -> Path:
        return self.root

    def text(self, name: str) -> str:
        """A path under the root, as text (kept: a single append names a few of them several
        times, and each ``Path`` joined and turned back into text costs more than its system call)."""
        got = self._text.get(name)
        if got is None:
            got = self._text[name] = os.path.join(self.root, name)
        return got

    def path(self, folder: str, name: str) -> Path:
        return self.root / folder / name

    def list_names(self, folder: str) -> list[str]:
        try:
            return os.listdir(self.text(folder))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def entries(self, folder: str) -> list[Path]:
        """Everything directly in ``folder`` (files and folders), as paths; [] when it is absent."""
        try:
            return [Path(e.path) for e in os.scandir(self.text(folder))]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def size(self, folder: str, name: str) -> int | None:
        try:
            return os.stat(os.path.join(self.text(folder), name)).st_size
        except FileNotFoundError:
            return None

    def exists(self, name: str) -> bool:
        return os.path.isfile(self.text(name))

    def read_text(self, name: str) -> str:
        with open(self.text(name), encoding="utf-8") as fh:
            return fh.read()

    def write_new(self, name: str, data: bytes, *, tmp_prefix: str = ".") -> None:
        folder = os.path.dirname(self.text(name))
        os.makedirs(folder, exist_ok=True)
        atomic_write(self.text(name), data, tmp_dir=self.text("_tmp"), tmp_prefix=tmp_prefix)

    def delete(self, name: str) -> None:
        Path(self.text(name)).unlink(missing_ok=True)

    def init(self, marker: str, marker_body: bytes, folders: Iterable[str]) -> None:
        for sub in ("_tmp", "_lock", *folders):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        if not self.exists(marker):
            atomic_write(self.text(marker), marker_body, tmp_dir=self.text("_tmp"))

    def writers_lock(self, timeout_s: float) -> FileLock:
        return FileLock(self.text(os.path.join("_lock", "append.lock")), timeout_s)

    def compactor_lock(self, timeout_s: float | None) -> FileLock:
        return FileLock(self.root / "_lock" / "compact.lock", timeout_s)

    def staging_path(self, commit_id: str) -> Path:
        return self.root / "_tmp" / f"commit-{commit_id}.parquet"

    def scratch(self) -> Path:
        return self.root / "_tmp"

    def clean_staging(self) -> list[str]:
        """Remove dead writers' ``commit-*`` files from ``_tmp``; the names left there."""
        folder = self.text("_tmp")
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return []
        for n in names:
            if n.startswith("commit-"):
                Path(folder, n).unlink(missing_ok=True)
        return [n for n in names if not n.startswith("commit-")]

    def publish_file(self, tmp: str | Path, table: str, name: str) -> Path:
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        return self._rename_in(tmp, table, name)

    def _rename_in(self, tmp: str | Path, table: str, name: str) -> Path:
        """Rename a flushed file into ``table`` under ``name``, then flush the folder."""
        folder = self.text(table)
        os.replace(tmp, os.path.join(folder, name))
        fsync_dir(folder)
        return self.root / table / name

    def publish_bytes(self, body: Any, table: str, name: str, staged: str,
                      before: Callable[[], None]) -> Path:
        """Write ``body`` to ``_tmp/staged``, call ``before`` (the caller's work before the
        rename), flush and rename it into ``table``. (The flush comes after ``before``: a single
        append's Python runs before it sleeps in its first flush, not after it, on caches the
        wait left cold.)"""
        path = os.path.join(self.text("_tmp"), staged)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view):]
            before()
            os.fsync(fd)
        finally:
            os.close(fd)
        return self._rename_in(path, table, name)

    def _token_path(self, table: str) -> str:
        return self.text(os.path.join("_lock", CHANGE_TOKEN.format(table=table)))

    def change_token(self, table: str) -> bytes:
        try:
            with open(self._token_path(table), "rb") as fh:
                return fh.read()
        except OSError:
            return b""

    def changing(self, table: str) -> tuple[bytes, bytes]:
        path = self._token_path(table)
        new = uuid.uuid4().bytes
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            old = os.pread(fd, len(new), 0)
            os.pwrite(fd, new, 0)
        finally:
            os.close(fd)
        return old, new

    def mtime_ns(self, folder: str) -> int | None:
        try:
            return os.stat(self.text(folder)).st_mtime_ns
        except OSError:
            return None

    def attach(self, con: Any) -> None:
        """Nothing to do: DuckDB reads local paths."""


class S3Backend:
    """A store in an S3 bucket under a prefix (see the module's docstring)."""

    keeps_listing = False
    compacts_after_commit = False   # a merge costs a GET of every small file; writers may not delete

    def __init__(self, root: ObjectPath) -> None:
        self.root = root
        self.files = root.files
        self._sizes: dict[str, dict[str, int]] = {}    # each folder's last listing: name -> size

    folder = None

    def path(self, folder: str, name: str) -> ObjectPath:
        return ObjectPath(self.files, f"{self.root.key}/{folder}/{name}" if self.root.key else f"{folder}/{name}")

    def _key(self, name: str) -> str:
        return f"{self.root.key}/{name}" if self.root.key else name

    def list_names(self, folder: str) -> list[str]:
        listed = [(n.rsplit("/", 1)[-1], st.st_size) for n, st in self.files.list_stat(self._key(folder))]
        self._sizes[folder] = dict(listed)     # (one LIST gives every size: no HEAD each)
        return [n for n, _ in listed]

    def entries(self, folder: str) -> list[ObjectPath]:
        """The objects directly under ``folder``, each knowing its size and time (one LIST)."""
        return list((self.root / folder).iterdir())

    def size(self, folder: str, name: str) -> int | None:
        known = self._sizes.get(folder)
        if known is None or name not in known:
            self.list_names(folder)
            known = self._sizes[folder]
        return known.get(name)

    def exists(self, name: str) -> bool:
        return self.files.exists(self._key(name))

    def read_text(self, name: str) -> str:
        return self.files.read_bytes(self._key(name)).decode("utf-8")

    def write_new(self, name: str, data: bytes, *, tmp_prefix: str = ".") -> None:
        self.files.put_new(self._key(name), data)      # one conditional PUT: whole or absent

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.files.delete(self._key(name))

    def init(self, marker: str, marker_body: bytes, folders: Iterable[str]) -> None:
        if not self.exists(marker):
            with contextlib.suppress(FileExistsError):   # of two creators racing, the first marker stays
                self.write_new(marker, marker_body)

    def writers_lock(self, timeout_s: float) -> AbstractContextManager[None]:
        return self.files.lock()

    def compactor_lock(self, timeout_s: float | None) -> FileLock:
        return FileLock(local_state(self.root) / "_lock" / "compact.lock", timeout_s)

    def staging_path(self, commit_id: str) -> Path:
        return staging_path(commit_id)

    def scratch(self) -> Path:
        folder = local_state(self.root) / "_tmp"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def clean_staging(self) -> list[str]:
        return []      # (staged on this machine, each under a name of its own: nothing in the bucket)

    def publish_file(self, tmp: str | Path, table: str, name: str) -> ObjectPath:
        try:
            with open(tmp, "rb") as fh:
                data = fh.read()
            return self.publish_bytes(data, table, name, "", lambda: None)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def publish_bytes(self, body: Any, table: str, name: str, staged: str,
                      before: Callable[[], None]) -> ObjectPath:
        before()
        self.files.put_new(self._key(f"{table}/{name}"), bytes(body))
        return self.path(table, name)

    def change_token(self, table: str) -> bytes:
        return b""

    def changing(self, table: str) -> tuple[bytes, bytes]:
        return b"", b""

    def mtime_ns(self, folder: str) -> int | None:
        return None

    def attach(self, con: Any) -> None:
        attach(con, self.root)


#: What DuckDB reads as a pattern in a file path (``read_parquet('<root>/events/*.parquet')``).
GLOB_CHARS = "*?["


def backend_for(root: str | os.PathLike[str]) -> LocalBackend | S3Backend:
    """The backend of a store root: ``s3://bucket/prefix`` (or ``s3a://``), else a local folder.

    Raises:
        StorePathRefused: the root's path holds one of :data:`GLOB_CHARS`.
    """
    obj = object_root(root)
    backend = S3Backend(obj) if obj is not None else LocalBackend(local_root(root))
    for char in GLOB_CHARS:         # (making a backend touches no file: a refused root leaves none)
        if char in str(backend.root):
            raise StorePathRefused(backend.root, char)
    return backend


def local_root(root: str | os.PathLike[str]) -> Path:
    """A local store root as an absolute path (``file://`` URIs accepted)."""
    text = os.fspath(root)
    if isinstance(text, str) and text.startswith("file://"):
        text = text[len("file://"):]
    return Path(text).absolute()


def object_uri(root: object) -> str | None:
    """An object-store root as ``s3://bucket/prefix`` (from ``s3a://`` too), or None for a local path.

    Accepts the ``s3:/bucket`` a ``pathlib.Path`` makes of ``s3://bucket`` (settings typed as paths).
    Text only: no client is made (see :func:`object_root`).
    """
    text = os.fspath(root) if isinstance(root, os.PathLike) else root
    if not isinstance(text, str):
        return None
    for scheme in ("s3://", "s3a://", "s3:/", "s3a:/"):
        if text.startswith(scheme):
            return "s3://" + text[len(scheme):]
    return None


def object_root(root: object) -> ObjectPath | None:
    """The root of an object store (``s3://bucket/prefix``, as :func:`object_uri` reads it), or None
    for a local path."""
    if isinstance(root, ObjectPath):
        return root
    uri = object_uri(root)
    return ObjectPath(ObjectFiles(uri)) if uri is not None else None


def attach(con: Any, root: object) -> None:
    """Let DuckDB connection ``con`` read an object-store root's ``s3://`` paths (through fsspec:
    DuckDB's own S3 extension need not be installed). Nothing to do for a local root."""
    if isinstance(root, ObjectPath):
        fs = root.files.fsspec()
        if not con.filesystem_is_registered(fs.protocol[0] if isinstance(fs.protocol, tuple) else fs.protocol):
            con.register_filesystem(fs)


def staging_path(commit_id: str) -> Path:
    """Where a commit to an object store is written locally before its single PUT: a name of its
    own on every call. The folder is the machine's: two processes creating stores at once both
    stage the empty first commit (whose id is fixed), and a name from the commit id alone let one
    PUT, then delete, the other's file."""
    folder = Path(tempfile.gettempdir()) / "metricstore-staging"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"commit-{commit_id}-{uuid.uuid4().hex[:16]}.parquet"


#: Overrides where an object store's machine-local state lives (see :func:`local_state`).
STATE_ENV = "METRICSTORE_STATE_DIR"


def user_folder(env: str, xdg: str, *home: str) -> Path:
    """A folder of this user's: ``$<env>``, else ``$<xdg>/metricstore``, else ``~/<home>/metricstore``
    (the XDG base directories)."""
    base = os.environ.get(env) or os.path.join(os.environ.get(xdg) or os.path.join(os.path.expanduser("~"), *home),
                                               "metricstore")
    return Path(base).absolute()


def local_state(root: object) -> Path:
    """The local folder for what belongs to one machine rather than to the store's data: file locks
    (one job at a time, one scheduler), the scheduler's job store (SQLite), a job's small state
    (ETags, content hashes) and downloads in flight.

    A local store keeps it in its own folder, as always. An object store can hold none of it (no
    file lock, no SQLite over S3), so it lives in ``$METRICSTORE_STATE_DIR`` (default
    ``$XDG_STATE_HOME/metricstore``, i.e. ``~/.local/state/metricstore``) under a folder named after
    the bucket and prefix. Its locks therefore hold on this machine only: run one scheduler per store.
    """
    obj = object_root(root)
    if obj is None:
        return local_root(root)  # type: ignore[arg-type]
    base = user_folder(STATE_ENV, "XDG_STATE_HOME", ".local", "state")
    where = f"{obj.files.endpoint or 'aws'} {obj.files.uri}"
    label = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in f"{obj.files.bucket}_{obj.files.prefix}")
    folder = base / "s3" / f"{label[:100]}-{hashlib.sha256(where.encode()).hexdigest()[:10]}"
    (folder / "_lock").mkdir(parents=True, exist_ok=True)
    return folder
