"""What an input file is, by its first bytes, and its content as the readers see it.

A gzip-compressed file (``.csv.gz``, ``.json.gz``, or gzip content under any name) is read as
the file it holds: the readers get its decompressed bytes and decide the format by the name
without ``.gz``. Archives, office documents, PDFs and images are named as what they are, with
what is supported, instead of failing later as text that is "not UTF-8".
"""

from __future__ import annotations

import gzip
import io
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

from ingest.errors import BadFile

GZIP_MAGIC = b"\x1f\x8b"
#: Most bytes a compressed input may expand to: a small file that inflates to gigabytes is refused.
MAX_INFLATED = 2 << 30
SUPPORTED = ("supported: CSV, TSV, JSON, JSON lines and Parquet files, each also gzip-compressed (.gz), "
             "SEC companyfacts JSON, and Excel workbooks through a mapping")

#: (first bytes, what a file starting with them is); ZIP is looked into (a workbook is a ZIP).
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PAR1", "a Parquet file"), (b"PK\x03\x04", "a ZIP archive"), (b"PK\x05\x06", "an empty ZIP archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old-style Office document (.xls or .doc)"),
    (b"%PDF", "a PDF document"), (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"), (b"Rar!", "a RAR archive"),
    (b"BZh", "a bzip2-compressed file"), (b"\xfd7zXZ\x00", "an xz-compressed file"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file"), (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"), (b"SQLite format 3\x00", "an SQLite database"), (b"\x7fELF", "a program (ELF)"),
)


def is_gzip(head: bytes) -> bool:
    return head.startswith(GZIP_MAGIC)


def inner_path(path: Path) -> Path:
    """The name a compressed file's content goes by: ``q4.csv.gz`` -> ``q4.csv``."""
    return path.with_suffix("") if path.suffix.lower() == ".gz" else path


def what_binary(path: Path, head: bytes) -> str | None:
    """What a file no reader of text takes is (``a ZIP archive``), or None for anything else."""
    for magic, what in _MAGIC:
        if head.startswith(magic):
            if magic.startswith(b"PK"):
                return _zip_kind(path) or what
            return what
    return None


def _zip_kind(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()[:1000]
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    if any(n.startswith("xl/") for n in names):
        return "an Excel workbook (.xlsx)"
    if any(n.startswith("word/") for n in names):
        return "a Word document (.docx)"
    if "content.xml" in names:
        return "an OpenDocument file (.ods/.odt)"
    return None


def refuse_binary(path: Path, head: bytes) -> None:
    """Raise :class:`BadFile` saying what ``path`` is when it is an archive, document or image."""
    what = what_binary(path, head)
    if what is None:
        return
    hint = ("; export the sheet as CSV, or read it through a mapping (data/mappings)" if "Excel" in what
            else "; extract the file from it" if "archive" in what
            else "; name it .parquet, or give --format parquet" if "Parquet" in what else "")
    raise BadFile(str(path), f"is {what}, not a file of facts ({SUPPORTED}){hint}")


def open_input(path: Path) -> BinaryIO:
    """The file's content as a binary stream, decompressed when it is gzip."""
    fh = path.open("rb")
    if is_gzip(fh.read(2)):
        fh.seek(0)
        return io.BufferedReader(_Inflating(path, fh), 1 << 20)
    fh.seek(0)
    return fh


def head_of(path: Path, n: int = 4096) -> bytes:
    """The first ``n`` bytes of the content (decompressed when gzip)."""
    try:
        with open_input(path) as fh:
            return fh.read(n)
    except OSError as exc:
        raise BadFile(str(path), f"cannot be read: {exc.strerror}") from None


def read_input(path: Path) -> bytes:
    """The whole content of a text input (decompressed when gzip); archives and documents are refused."""
    with open_input(path) as fh:
        data = fh.read()
    refuse_binary(path, data[:64])
    return data


class _Inflating(io.RawIOBase):
    """A gzip stream that stops, with a clear error, past :data:`MAX_INFLATED` bytes or on damage."""

    def __init__(self, path: Path, raw: BinaryIO) -> None:
        self.path, self.raw, self.inner, self.total = path, raw, gzip.GzipFile(fileobj=raw), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            got = self.inner.readinto(buffer)
        except (OSError, EOFError, zlib.error) as exc:
            raise BadFile(str(self.path), f"is gzip-compressed but cannot be decompressed ({exc})") from None
        self.total += got
        if self.total > MAX_INFLATED:
            raise BadFile(str(self.path), f"decompresses to more than {MAX_INFLATED >> 30} GiB; "
                                          "give the file uncompressed, or split it")
        return got

    def close(self) -> None:
        self.inner.close()
        self.raw.close()
        super().close()
