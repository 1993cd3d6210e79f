"""Reading a CSV file in bounded memory when a field in it is far too long.

:func:`read_limited` reads a file's content chunk by chunk and looks at its line lengths as it
goes. A file whose lines are all at most :data:`LINE_LIMIT` bytes is returned as read. One with a
longer line is read again, through :func:`cut_long_fields`: every field longer than ``keep``
bytes is cut to its first ``keep`` bytes (on a character boundary), so a 200 MB cell costs a
chunk of memory, not gigabytes, and the row is still there to be rejected ("field too long")
and quarantined, truncated.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from typing import BinaryIO

#: Bytes read at a time.
CHUNK = 1 << 20
#: Longest line read as it is; a file with a longer one has its long fields cut first.
LINE_LIMIT = 1 << 20
_QUOTE = 0x22
#: Byte-order marks of UTF-16 and UTF-32 text (UTF-32 first: its LE mark begins with UTF-16's).
WIDE_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def read_limited(open_stream: Callable[[], BinaryIO], sep: bytes, keep: int) -> tuple[bytes, bool]:
    """The content of a CSV stream; with any line over :data:`LINE_LIMIT` bytes, its fields cut
    to ``keep`` bytes. Returns the bytes and whether a field was cut."""
    data: list[bytes] = []
    run = 0          # length of the line still open at the end of the bytes read so far
    with open_stream() as fh:
        while chunk := fh.read(CHUNK):
            if not data and chunk.startswith(WIDE_BOMS):   # UTF-16/32: no byte-wise cutting
                return chunk + fh.read(), False
            lines = chunk.split(b"\n")
            if len(lines) == 1:
                run += len(chunk)
            else:
                if run + len(lines[0]) > LINE_LIMIT or max(map(len, lines[1:-1]), default=0) > LINE_LIMIT:
                    run = LINE_LIMIT + 1
                else:
                    run = len(lines[-1])
            if run > LINE_LIMIT:
                break
            data.append(chunk)
        else:
            return b"".join(data), False
    del data
    with open_stream() as fh:
        out, cut = cut_long_fields(fh, sep, keep)
    return bytes(out), cut


def _trim_partial_char(out: bytearray) -> None:
    """Drop an incomplete UTF-8 sequence at the end of ``out`` (a cut in the middle of a character)."""
    for back in range(1, min(4, len(out)) + 1):
        b = out[-back]
        if b & 0xC0 != 0x80:                       # a lead byte (or ASCII)
            need = 1 if b < 0x80 else 2 if b >> 5 == 0b110 else 3 if b >> 4 == 0b1110 else 4
            if need > back:
                del out[-back:]
            return


def cut_long_fields(fh: BinaryIO, sep: bytes, keep: int) -> tuple[bytearray, bool]:
    """A CSV stream (RFC 4180 quoting) with every field longer than ``keep`` bytes cut to ``keep``.

    Records, fields, quotes and line ends are kept as they are; only the bytes of a field past
    ``keep`` are dropped. Returns the bytes and whether any field was cut.
    """
    special = re.compile(b'["\n' + re.escape(sep).replace(b"]", b"\\]") + b"]")
    out = bytearray()
    in_quotes = pending_quote = cut = any_cut = False
    length = seen = 0            # content bytes kept in the current field; any bytes of it seen

    def content(piece: bytes) -> None:
        nonlocal length, cut, any_cut
        if cut or not piece:
            return
        room = keep - length
        if len(piece) <= room:
            out.extend(piece)
            length += len(piece)
            return
        out.extend(piece[:room])
        _trim_partial_char(out)
        cut = any_cut = True

    def end_field() -> None:
        nonlocal length, seen, cut, in_quotes
        length = seen = 0
        cut = in_quotes = False

    while chunk := fh.read(CHUNK):
        i, n = 0, len(chunk)
        while i < n:
            if pending_quote:                  # a quote inside quotes: doubled (text) or closing
                pending_quote = False
                if chunk[i] == _QUOTE:
                    if not cut and length + 1 <= keep:
                        out.extend(b'""')
                        length += 1
                    i += 1
                    continue
                out.append(_QUOTE)
                in_quotes = False
            if in_quotes:
                j = chunk.find(b'"', i)
                content(chunk[i:] if j < 0 else chunk[i:j])
                seen += 1
                if j < 0:
                    i = n
                else:
                    pending_quote, i = True, j + 1
                continue
            m = special.search(chunk, i)
            end = n if m is None else m.start()
            content(chunk[i:end])
            seen += end - i
            if m is None:
                i = n
                continue
            c = chunk[end]
            if c == _QUOTE and seen == 0:
                in_quotes = True
                out.append(_QUOTE)
                seen = 1
            elif c == _QUOTE:
                content(b'"')
                seen += 1
            else:                               # the separator or a line end closes the field
                out.append(c)
                end_field()
            i = end + 1
    if pending_quote:
        out.append(_QUOTE)
    return out, any_cut
