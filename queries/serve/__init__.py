"""``metricstore serve``: the views over the PostgreSQL wire protocol (see docs/serving.md).

Each connection is a session of the same locked, read-only sandbox :class:`~queries.MetricStore`
uses (:mod:`queries.serve.session`); the protocol is buenavista's message loop with TLS, password,
parameter, cancel and limit handling of our own (:mod:`queries.serve.server`).
"""

from __future__ import annotations

import ipaddress
import logging
import socket

from queries.errors import BadArgument
from queries.serve.auth import hash_password, load_users, users_from_env, verify_password
from queries.serve.server import ServeConfig, Server, tls_context

#: sandboxes opened at start, so that the first clients do not wait for them
WARM_SANDBOXES = 2

__all__ = ["ServeConfig", "Server", "hash_password", "is_loopback", "load_users", "serve", "tls_context",
           "users_from_env", "verify_password"]


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` resolves to is a loopback address (127.0.0.0/8, ::1)."""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def check(config: ServeConfig) -> None:
    """Refuse a configuration that would serve without a password, or off loopback without TLS.

    Raises:
        BadArgument: no user, or a non-loopback host without a certificate.
    """
    if not config.users:
        raise BadArgument("users", "", "no user: give --users FILE or METRICSTORE_SERVE_USER and "
                                       "METRICSTORE_SERVE_PASSWORD (a password is required for every connection)")
    if config.tls is None and not is_loopback(config.host):
        raise BadArgument("host", config.host, "is not a loopback address: serving on it needs TLS "
                                               "(--tls-cert and --tls-key)")
    if config.timeout_s <= 0 or config.max_connections < 1:
        raise BadArgument("timeout", config.timeout_s, "and the connection cap must be positive")


def serve(config: ServeConfig, *, ready: logging.Logger | None = None) -> None:
    """Serve until interrupted; logs the address once it is listening."""
    check(config)
    server = Server(config)
    server.sandboxes.warm(WARM_SANDBOXES)
    host, port = server.server_address[:2]
    (ready or logging.getLogger("metricstore.serve")).warning(
        "serving %s on %s:%s (%s)", config.store.root, host, port, "TLS" if config.tls else "loopback, no TLS")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
