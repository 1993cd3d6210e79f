"""The PostgreSQL wire protocol in front of the sandbox, on buenavista's message loop.

buenavista (a pure-Python PostgreSQL-protocol server, ``socketserver`` threads) frames the
messages and runs the simple and extended query flows. This module replaces the parts a shared
server needs that it lacks or does differently (see docs/serving.md):

- TLS: an ``SSLRequest`` is answered ``S`` and the socket wrapped when ``--tls-cert``/``--tls-key``
  are given, ``N`` otherwise;
- a password for every connection (``AuthenticationCleartextPassword``, checked against a scrypt
  hash: see :mod:`queries.serve.auth`); a failed login is logged with the user and the address only;
- bound parameters decoded by their type (text and binary), not guessed;
- a cancel request interrupts the running query (DuckDB's interrupt) instead of closing the session;
- a cap on connections, a cap on a message's length, errors with their SQLSTATE; bad bytes end
  that connection only.
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import logging
import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buenavista.core import Connection, QueryResult
from buenavista.postgres import (PG_UNKNOWN, BVTYPE_TO_PGTYPE, BuenaVistaHandler, BuenaVistaServer, BVBuffer, BVContext,
                                 ClientCommand)

from queries.errors import BadArgument, SqlError, SqlRefused
from queries.serve.auth import verify_password
from queries.serve.session import Sandboxes, StoreSession
from queries.serve.wire import binary, binary_row, copy_messages
from store import Store

log = logging.getLogger("metricstore.serve")

SSL_REQUEST, GSS_REQUEST, CANCEL_REQUEST, PROTOCOL_3 = 80877103, 80877104, 80877102, 196608
#: a longer message is refused (a query text, a bound value): random bytes would otherwise be read as a length
MAX_MESSAGE = 16 * 1024 * 1024
#: the point in time a database name sets: asof_2024-06-30
ASOF_DATABASE = "asof_"
#: seconds from connecting to a checked password (PostgreSQL's authentication_timeout is 60)
LOGIN_TIMEOUT_S = 30.0
#: sandboxes of ended sessions kept open for the next (each holds its DuckDB and views: about 10 MB)
SANDBOXES_KEPT = 8
#: password checks run at once (each scrypt check holds 16 MB)
HASHING_AT_ONCE = 4
NO_DATA, PORTAL_SUSPENDED = b"n\x00\x00\x00\x04", b"s\x00\x00\x00\x04"


class Refused(Exception):
    """A connection refused before it is served (its SQLSTATE and message go to the client)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class ServeConfig:
    """What ``metricstore serve`` was started with."""

    store: Store
    users: dict[str, str]
    host: str = "127.0.0.1"
    port: int = 5433
    tls: ssl.SSLContext | None = None
    timeout_s: float = 60.0
    max_connections: int = 32
    parameters: dict[str, str] = field(default_factory=lambda: {
        "server_version": "9.4.0", "server_encoding": "UTF8", "client_encoding": "UTF8", "DateStyle": "ISO, MDY",
        "integer_datetimes": "on", "standard_conforming_strings": "on", "TimeZone": "UTC",
        "application_name": "metricstore"})


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server TLS context (TLS 1.2 or newer) from a PEM certificate and key."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


class _Sessions(Connection):
    """buenavista's session registry; sessions are made after the password is checked."""

    def __init__(self, config: ServeConfig) -> None:
        super().__init__()
        self.config = config

    def parameters(self) -> dict[str, str]:
        return dict(self.config.parameters)


def _decode(value: bytes, oid: int, fmt: int) -> Any:
    """A bound parameter as Python: text by its type OID (0, unknown: a string for DuckDB to cast), binary by its OID."""
    if fmt == 0:
        text = value.decode("utf-8")
        if oid in (20, 21, 23, 26):
            return int(text)
        if oid in (700, 701):
            return float(text)
        if oid == 1700:
            return decimal.Decimal(text)
        if oid == 16:
            return text.lower() in ("t", "true", "1", "on", "yes")
        if oid == 1082:
            return dt.date.fromisoformat(text)
        return text
    if oid in (20, 21, 23):
        return int.from_bytes(value, "big", signed=True)
    if oid in (700, 701):
        return struct.unpack("!f" if oid == 700 else "!d", value)[0]
    if oid == 16:
        return value != b"\x00"
    if oid in (0, 25, 1043, 19, 705):
        return value.decode("utf-8")
    if oid == 1082:
        return dt.date(2000, 1, 1) + dt.timedelta(days=int.from_bytes(value, "big", signed=True))
    raise BadArgument("parameter", f"type {oid}", "is not a type this server binds in binary; send it as text")


class _Context(BVContext):
    def __init__(self, session: Any, rewriter: Any, params: dict[str, str]) -> None:
        super().__init__(session, rewriter, params)
        #: portals suspended at a client's row limit: their result and the rows not yet sent
        self.pending: dict[str, tuple[QueryResult, Iterator[list[Any]]]] = {}

    def close_statement(self, name: str) -> None:
        self.stmts.pop(name, None)      # closing what does not exist is no error in PostgreSQL

    def close_portal(self, name: str) -> None:
        self.portals.pop(name, None)
        self.pending.pop(name, None)

    def sync(self) -> None:
        super().sync()
        self.pending.pop("", None)      # the unnamed portal ends with its implicit transaction

    def describe_statement(self, name: str) -> QueryResult:
        sql, oids = self.stmts[name]
        return self.execute_sql(sql, [None] * len(oids))


class Handler(BuenaVistaHandler):
    """One client connection."""

    server: Server
    request: socket.socket
    rfile: Any
    wfile: Any

    def handle(self) -> None:
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        self.request.settimeout(LOGIN_TIMEOUT_S)   # a client that never logs in gives its slot back
        self.r = BVBuffer(self.rfile)
        self.peer = "%s:%s" % self.client_address[:2]
        ctx: _Context | None = None
        self.admitted = False
        try:
            ctx = self.handle_startup(self.server.conn)
            while ctx is not None:
                kind = self.r.read_byte()
                if not kind or kind == ClientCommand.TERMINATE:
                    break
                length = self.r.read_uint32()
                if length < 4 or length > MAX_MESSAGE:
                    raise Refused("08P01", f"invalid message length {length}")
                payload = self.r.read_bytes(length - 4) if length > 4 else b""
                if length > 4 and len(payload) != length - 4:
                    break    # the client went away mid-message
                if not ctx.authenticated:
                    if kind != ClientCommand.PASSWORD_MESSAGE:
                        raise Refused("08P01", "expected a password message")
                    if not self.check_password(ctx, payload):
                        break
                else:
                    self.dispatch(ctx, kind, payload)
        except Refused as exc:
            self.send_error(exc)
        except (ConnectionError, ssl.SSLError, OSError, EOFError):
            pass
        except (struct.error, ValueError, IndexError, KeyError, UnicodeDecodeError) as exc:
            log.info("closing %s: malformed message (%s)", self.peer, type(exc).__name__)
            self._quiet_error(Refused("08P01", "malformed protocol message"))
        except Exception as exc:  # one connection's fault never reaches the other sessions or the log as a traceback
            log.error("closing %s: %s: %s", self.peer, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
            self._quiet_error(Refused("XX000", "internal error; the connection is closed"))
        finally:
            if ctx is not None:
                self.server.ctxts.pop(ctx.process_id, None)
                if ctx.session is not None:
                    ctx.session.close()
            if self.admitted:
                self.server.release()

    def dispatch(self, ctx: _Context, kind: bytes, payload: bytes) -> None:
        if kind == ClientCommand.QUERY:
            self.handle_query(ctx, payload)
        elif kind == ClientCommand.PARSE:
            self.handle_parse(ctx, payload)
        elif kind == ClientCommand.BIND:
            self.handle_bind(ctx, payload)
        elif kind == ClientCommand.DESCRIBE:
            self.handle_describe(ctx, payload)
        elif kind == ClientCommand.EXECUTE:
            self.handle_execute(ctx, payload)
        elif kind == ClientCommand.CLOSE:
            self.handle_close(ctx, payload)
        elif kind == ClientCommand.SYNC:
            ctx.sync()
            self.send_ready_for_query(ctx)
        elif kind == ClientCommand.FLUSH:
            self.wfile.flush()
        else:
            raise Refused("08P01", f"unknown message type {kind!r}")

    def handle_startup(self, conn: Connection) -> _Context | None:
        length = self.r.read_uint32()
        if length < 8 or length > 10_000:
            raise Refused("08P01", "invalid startup packet length")
        code = self.r.read_uint32()
        if code in (SSL_REQUEST, GSS_REQUEST):
            if code == SSL_REQUEST and self.server.config.tls is not None:
                self.wfile.write(b"S")
                self.wfile.flush()
                self.request = self.server.config.tls.wrap_socket(self.request, server_side=True)
                self.rfile = self.request.makefile("rb")
                self.wfile = self.request.makefile("wb", buffering=0)
                self.r = BVBuffer(self.rfile)
            else:
                self.wfile.write(b"N")
            return self.handle_startup(conn)
        if code == CANCEL_REQUEST:
            process_id, secret = self.r.read_uint32(), self.r.read_uint32()
            target = self.server.ctxts.get(process_id)
            if target is not None and target.secret_key == secret and target.session is not None:
                target.session.interrupt()
            return None
        if code != PROTOCOL_3:
            raise Refused("08P01", f"unsupported protocol {code >> 16}.{code & 0xFFFF}")
        if self.server.config.tls is not None and not isinstance(self.request, ssl.SSLSocket):
            raise Refused("28000", "this server accepts TLS connections only (sslmode=require)")
        fields = [x.decode("utf-8") for x in self.r.read_bytes(length - 8).split(b"\x00")]
        params = dict(zip(fields[::2], fields[1::2]))
        if not self.server.admit():
            raise Refused("53300", f"too many connections (at most {self.server.config.max_connections})")
        self.admitted = True
        ctx = _Context(None, self.server.rewriter, params)  # the session comes after the password
        self.wfile.write(struct.pack("!cii", b"R", 8, 3))   # AuthenticationCleartextPassword
        return ctx

    def check_password(self, ctx: _Context, payload: bytes) -> bool:
        user = ctx.params.get("user", "")
        password = payload.rstrip(b"\x00").decode("utf-8", errors="replace")
        stored = self.server.config.users.get(user)
        with self.server.hashing:       # scrypt takes 16 MB a check: a flood of logins waits, memory stays bounded
            ok = stored is not None and verify_password(password, stored)
        if not ok:
            log.warning("failed login: user %r from %s", user, self.peer)
            self.send_error(Refused("28P01", f'password authentication failed for user "{user}"'))
            return False
        database = ctx.params.get("database") or user     # libpq's default database is the user's name
        session = StoreSession(self.server.sandboxes, timeout_s=self.server.config.timeout_s,
                               parameters=self.server.config.parameters, database=database)
        try:
            if database.lower().startswith(ASOF_DATABASE):
                session.set_point("as_of", database[len(ASOF_DATABASE):])
        except BadArgument as exc:
            session.close()
            self.send_error(Refused("3D000", f'database "{database}": {exc.reason}'))
            return False
        ctx.session = session
        self.server.ctxts[ctx.process_id] = ctx
        self.request.settimeout(None)
        log.info("login: user %r from %s%s", user, self.peer, f" as of {session.as_of}" if session.as_of else "")
        self.send_authentication_ok()
        self.handle_post_auth(ctx)
        return True

    def handle_bind(self, ctx: BVContext, payload: bytes) -> None:
        ba = bytes(payload)
        portal_end = ba.index(b"\x00")
        stmt_end = ba.index(b"\x00", portal_end + 1)
        portal, stmt = ba[:portal_end].decode("utf-8"), ba[portal_end + 1:stmt_end].decode("utf-8")
        buf = BVBuffer(io.BytesIO(ba[stmt_end + 1:]))
        formats = [buf.read_int16() for _ in range(buf.read_int16())]
        count = buf.read_int16()
        formats = formats * count if len(formats) == 1 else (formats or [0] * count)
        oids = ctx.stmts[stmt][1]
        values: list[Any] = []
        for i in range(count):
            size = buf.read_int32()
            raw = buf.read_bytes(size) if size >= 0 else None
            values.append(None if raw is None else _decode(raw, oids[i] if i < len(oids) else 0, formats[i]))
        result_formats = [buf.read_int16() for _ in range(buf.read_int16())]
        ctx.add_portal(portal, stmt, values, result_formats)
        self.send_bind_complete()

    def handle_query(self, ctx: _Context, payload: bytes) -> None:
        try:
            result = ctx.execute_sql(payload.decode("utf-8").rstrip("\x00"))
        except Exception as exc:  # an error answer, as PostgreSQL gives, and the session goes on
            self.send_error(exc)
        else:
            if result.has_results() and getattr(result, "copy", None) is None:
                self.send_row_description(result)
            self.send_result(result)
        self.send_ready_for_query(ctx)

    def handle_describe(self, ctx: _Context, payload: bytes) -> None:
        kind, name = payload[:1], payload[1:-1].decode("utf-8")
        try:
            result = ctx.describe_portal(name) if kind == b"P" else ctx.describe_statement(name)
        except Exception as exc:
            self.send_error(exc, ctx)
            return
        if kind != b"P":
            self.send_paramter_description(ctx.stmts[name][1])
        if result.has_results() and getattr(result, "copy", None) is None:
            self.send_row_description(result)
        else:
            self.wfile.write(NO_DATA)     # a statement without rows (SET, COPY) says so: libpq waits for it

    def handle_execute(self, ctx: _Context, payload: bytes) -> None:
        if ctx.has_error:
            return
        end = payload.index(b"\x00")
        portal, limit = payload[:end].decode("utf-8"), struct.unpack("!i", payload[end + 1:end + 5])[0]
        if portal in ctx.pending:     # a portal suspended at its row limit goes on where it stopped
            result, rows = ctx.pending.pop(portal)
        else:
            try:
                result = ctx.execute_portal(portal)
            except Exception as exc:
                self.send_error(exc, ctx)
                return
            if not result.has_results() or getattr(result, "copy", None) is not None:
                self.send_result(result)
                return
            rows = iter(result.rows())
        sent, more = self.send_rows(result, rows, limit)
        if more:
            ctx.pending[portal] = (result, rows)
            self.wfile.write(PORTAL_SUSPENDED)
        else:
            self.send_command_complete("SELECT %d\x00" % sent)

    def send_result(self, result: QueryResult) -> None:
        """A result's rows (the row description sent before), a COPY's data, or a command's tag."""
        fmt = getattr(result, "copy", None)
        if fmt is not None:
            is_binary = fmt == "binary"
            count = result.column_count()
            self.wfile.write(struct.pack(f"!cibh{count}h", b"H", 7 + 2 * count, int(is_binary), count,
                                         *([int(is_binary)] * count)))
            rows = 0
            for data in copy_messages(result.rows(), [result.column(i)[1] for i in range(count)], fmt):
                self.wfile.write(struct.pack("!ci", b"d", len(data) + 4) + data)
                rows += 1
            self.wfile.write(b"c\x00\x00\x00\x04")
            self.send_command_complete(f"COPY {rows - 1 if is_binary else rows}\x00")
        elif result.has_results():
            self.send_command_complete("SELECT %d\x00" % self.send_data_rows(result))
        else:
            self.send_command_complete(f"{result.status()}\x00")

    def send_data_rows(self, query_result: QueryResult, limit: int = 0) -> int:
        return self.send_rows(query_result, iter(query_result.rows()), limit)[0]

    def send_rows(self, result: QueryResult, rows: Iterator[list[Any]], limit: int) -> tuple[int, bool]:
        """Up to ``limit`` rows (0: all), each column text or binary as the client asked; whether it stopped at the limit."""
        count = result.column_count()
        formats = result.result_format or [0] * count
        text = [BVTYPE_TO_PGTYPE.get(result.column(i)[1], PG_UNKNOWN)[1] for i in range(count)]
        encoders = [binary(result.column(i)[1]) if formats[i] == 1 else
                    (lambda v, f=text[i]: f(v).encode("utf-8")) for i in range(count)]
        sent = 0
        for row in rows:
            body = binary_row(row, encoders)
            self.wfile.write(struct.pack("!ci", b"D", len(body) + 4) + body)
            sent += 1
            if limit and sent >= limit:
                return sent, True
        return sent, False

    def send_error(self, exception: object, ctx: BVContext | None = None) -> None:
        code = "XX000"
        if isinstance(exception, Refused):
            code = exception.code
        elif isinstance(exception, SqlRefused):
            code = "42501"      # insufficient_privilege
        elif isinstance(exception, BadArgument):
            code = "22023"      # invalid_parameter_value
        elif isinstance(exception, SqlError):
            code = "57014" if str(exception).startswith("canceling statement") else "42000"
        message = str(exception).splitlines()[0] if str(exception) else type(exception).__name__
        fatal = isinstance(exception, Refused)
        out = BVBuffer()
        for tag, value in ((b"S", "FATAL" if fatal else "ERROR"), (b"V", "FATAL" if fatal else "ERROR"),
                           (b"C", code), (b"M", message)):
            out.write_bytes(tag)
            out.write_string(value)
        out.write_bytes(b"\x00")
        body = out.get_value()
        self.wfile.write(struct.pack("!ci", b"E", len(body) + 4) + body)
        if ctx is not None:
            ctx.mark_error()

    def _quiet_error(self, exc: Exception) -> None:
        try:
            self.send_error(exc)
        except OSError:
            pass


class Server(BuenaVistaServer):
    """A thread per connection, at most ``max_connections`` sessions at once."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._open = 0
        self.hashing = threading.BoundedSemaphore(HASHING_AT_ONCE)
        self.sandboxes = Sandboxes(config.store, keep=min(config.max_connections, SANDBOXES_KEPT))
        super().__init__((config.host, config.port), _Sessions(config), auth=None)
        self.RequestHandlerClass = Handler      # buenavista's constructor names its own

    def verify_request(self, request: Any, client_address: Any) -> bool:
        return True     # any address the socket is bound to: the password (and TLS off loopback) guard it

    def admit(self) -> bool:
        with self._lock:
            if self._open >= self.config.max_connections:
                return False
            self._open += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._open = max(0, self._open - 1)

    def server_close(self) -> None:
        super().server_close()
        self.sandboxes.close()
