"""Who may connect to ``metricstore serve``: users and scrypt password hashes, never passwords.

A users file holds one ``user:hash`` a line (``#`` starts a comment); a hash is what
:func:`hash_password` prints (``metricstore serve --hash-password``): ``scrypt$n$r$p$salt$key``,
salt and key in hex. ``METRICSTORE_SERVE_USER`` and ``METRICSTORE_SERVE_PASSWORD`` name one user
from the environment instead (its hash is made at start; the password stays in memory only).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from queries.errors import BadArgument

USER_ENV = "METRICSTORE_SERVE_USER"
PASSWORD_ENV = "METRICSTORE_SERVE_PASSWORD"
#: scrypt's cost (2**14), block size and parallelism: the parameters Python's docs suggest as a minimum
N, R, P = 2**14, 8, 1


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """A salted scrypt hash of ``password`` for a users file."""
    salt = salt if salt is not None else os.urandom(16)
    key = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=N, r=R, p=P, dklen=32)
    return f"scrypt${N}${R}${P}${salt.hex()}${key.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (a :func:`hash_password` string), in constant time."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(bytes.fromhex(key)), maxmem=256 * 1024 * 1024)
        return hmac.compare_digest(got, bytes.fromhex(key))
    except ValueError:
        return False


def load_users(path: str | os.PathLike[str]) -> dict[str, str]:
    """``user -> hash`` from a users file.

    Raises:
        BadArgument: a line is not ``user:scrypt$...`` (named by file and line, without its hash).
    """
    users: dict[str, str] = {}
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, stored = line.partition(":")
        if not sep or not user.strip() or not stored.strip().startswith("scrypt$") or stored.count("$") != 5:
            raise BadArgument("users", f"{path}:{number}",
                              "is not 'user:HASH' with a hash from `metricstore serve --hash-password`")
        users[user.strip()] = stored.strip()
    if not users:
        raise BadArgument("users", str(path), "names no user")
    return users


def users_from_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The one user named by ``METRICSTORE_SERVE_USER``/``_PASSWORD``, hashed; empty when unset."""
    env = os.environ if environ is None else environ
    user, password = env.get(USER_ENV, "").strip(), env.get(PASSWORD_ENV, "")
    if not user or not password:
        return {}
    return {user: hash_password(password)}
