"""An S3 bucket under a prefix, as a store sees it: :class:`ObjectFiles` (the few operations a
store needs, over obstore) and :class:`ObjectPath` (a file or folder there, as the URI text every
reader takes).

Configuration is AWS's standard: ``AWS_ENDPOINT_URL`` (an S3-compatible endpoint),
``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/
``AWS_SESSION_TOKEN`` or a profile.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from obstore.store import ClientConfig, S3Config


@dataclass(frozen=True, order=True)
class ObjectStat:
    """The part of ``os.stat_result`` an object has: its size and when it was last written."""

    st_size: int
    st_mtime_ns: int
    etag: str = ""

    @property
    def st_mtime(self) -> float:
        return self.st_mtime_ns / 1e9

    @classmethod
    def of(cls, meta: Any) -> ObjectStat:
        when = meta.get("last_modified")
        ns = int(when.timestamp() * 1_000_000) * 1000 if when is not None else 0
        return cls(int(meta.get("size") or 0), ns, str(meta.get("e_tag") or ""))


class ObjectFiles:
    """A store's files in an S3 bucket under a prefix: ``s3://bucket/prefix/<table>/<file>``."""

    def __init__(self, uri: str) -> None:
        from obstore.store import S3Store  # the `s3` extra

        rest = uri.split("://", 1)[1].strip("/")
        self.bucket, _, self.prefix = rest.partition("/")
        if not self.bucket:
            raise ValueError(f"{uri}: an object-store root names a bucket: s3://bucket/prefix")
        self.uri = f"s3://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self.endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        self.region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        options: ClientConfig = {}
        if self.endpoint and self.endpoint.startswith("http://"):
            options["allow_http"] = True
        config: S3Config = {}
        if self.endpoint:
            config["endpoint"] = self.endpoint
        if self.region:
            config["region"] = self.region
        self._store = S3Store(self.bucket, prefix=self.prefix or None, config=config or None,
                              client_options=options or None)

    # -- the operations a store needs ------------------------------------------------------
    def url(self, name: str) -> str:
        """The full URI of a file (``name`` relative to the root, e.g. ``events/x.parquet``)."""
        return f"{self.uri}/{name}"

    def exists(self, name: str) -> bool:
        import obstore

        try:
            obstore.head(self._store, name)
        except FileNotFoundError:
            return False
        return True

    def list(self, folder: str) -> list[str]:
        """The names (``folder/file``) of the objects directly in ``folder``, sorted."""
        return [name for name, _ in self.list_stat(folder)]

    def list_stat(self, folder: str) -> builtins.list[tuple[str, ObjectStat]]:
        """The objects directly in ``folder`` with their size and time, sorted by name (one LIST)."""
        import obstore

        out: builtins.list[tuple[str, ObjectStat]] = []
        for chunk in obstore.list(self._store, prefix=f"{folder}/"):
            out.extend((str(m["path"]), ObjectStat.of(m)) for m in chunk)
        return sorted((n, st) for n, st in out if "/" not in n[len(folder) + 1:])

    def stat(self, name: str) -> ObjectStat:
        """Size and modification time of one object (one HEAD). Raises FileNotFoundError."""
        import obstore

        return ObjectStat.of(obstore.head(self._store, name))

    def read_bytes(self, name: str) -> bytes:
        import obstore

        return bytes(obstore.get(self._store, name).bytes())

    def put_new(self, name: str, data: bytes) -> None:
        """Write ``data`` as a new object in one PUT; refuse (FileExistsError) to overwrite one."""
        import obstore
        from obstore.exceptions import AlreadyExistsError

        try:
            obstore.put(self._store, name, data, mode="create")
        except AlreadyExistsError as exc:
            raise FileExistsError(self.url(name)) from exc

    def delete(self, name: str) -> None:
        import obstore

        obstore.delete(self._store, name)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """No lock: conditional puts of unique names, and readers that dedupe, make it needless."""
        yield

    # -- readers ---------------------------------------------------------------------------
    def fsspec(self) -> Any:
        """An fsspec (s3fs) filesystem over the same bucket, for DuckDB (see :func:`attach`)."""
        if getattr(self, "_fsspec", None) is None:
            import s3fs

            # no listing cache: a commit made since must show in the next glob
            kwargs: dict[str, Any] = {"use_listings_cache": False, "skip_instance_cache": True}
            if self.endpoint:
                kwargs["endpoint_url"] = self.endpoint
            if self.region:
                kwargs["client_kwargs"] = {"region_name": self.region}
            self._fsspec = s3fs.S3FileSystem(**kwargs)
        return self._fsspec


class ObjectPath(str):
    """A file or folder of an object store, answering the few pathlib calls a store makes.

    It is a ``str`` holding the full URI (``s3://bucket/prefix/events/x.parquet``), so DuckDB
    (with :func:`attach`), pyarrow and Spark read it as they read a local path.
    """

    files: ObjectFiles
    key: str
    _stat: ObjectStat | None

    def __new__(cls, files: ObjectFiles, key: str = "", stat: ObjectStat | None = None) -> ObjectPath:
        key = key.strip("/")
        obj = super().__new__(cls, files.url(key) if key else files.uri)
        obj.files, obj.key, obj._stat = files, key, stat
        return obj

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        return os.path.splitext(self.name)[1]

    @property
    def parent(self) -> ObjectPath:
        return ObjectPath(self.files, self.key.rpartition("/")[0])

    def __truediv__(self, other: str) -> ObjectPath:
        return ObjectPath(self.files, f"{self.key}/{other}")

    def absolute(self) -> ObjectPath:
        return self

    def is_file(self) -> bool:
        return bool(self.key) and self.files.exists(self.key)

    def exists(self) -> bool:
        return self.is_file() or self.is_dir()

    def is_dir(self) -> bool:
        return bool(self.files.list(self.key))

    def iterdir(self) -> Iterator[ObjectPath]:
        """The objects directly under this folder; each knows its size and time from the listing."""
        return iter([ObjectPath(self.files, n, st) for n, st in self.files.list_stat(self.key)])

    def stat(self) -> ObjectStat:
        """Size and time: from the listing that found this object, else one HEAD request."""
        return self._stat if self._stat is not None else self.files.stat(self.key)

    def glob(self, pattern: str) -> list[ObjectPath]:
        import fnmatch

        return [p for p in self.iterdir() if fnmatch.fnmatch(p.name, pattern)]

    def mkdir(self, *args: object, **kwargs: object) -> None:
        """Folders do not exist on an object store: nothing to do."""

    def read_bytes(self) -> bytes:
        return self.files.read_bytes(self.key)

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def open(self, mode: str = "rb") -> io.BytesIO:
        if mode != "rb":
            raise ValueError(f"{self}: objects are written whole (put_new), not opened for {mode!r}")
        return io.BytesIO(self.read_bytes())

    def unlink(self, missing_ok: bool = False) -> None:
        if not missing_ok and not self.is_file():
            raise FileNotFoundError(self)
        self.files.delete(self.key)
