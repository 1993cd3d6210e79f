"""``metricstore serve``: the views over the PostgreSQL wire protocol, for psql and BI tools."""

from __future__ import annotations

import getpass
import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from metricstore.options import StoreOpt, open_store
from queries.errors import BadArgument

app = typer.Typer()


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on; anything but loopback needs --tls-cert/--tls-key.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 5433,
    store: StoreOpt = None,
    users: Annotated[Path | None, typer.Option("--users", help="File of 'user:HASH' lines (HASH from --hash-password) [else env METRICSTORE_SERVE_USER and METRICSTORE_SERVE_PASSWORD].")] = None,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="PEM certificate: clients connect with TLS.")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="PEM private key of --tls-cert.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Statement timeout in seconds.")] = 60.0,
    max_connections: Annotated[int, typer.Option("--max-connections", help="Sessions open at once.")] = 32,
    hash_password: Annotated[bool, typer.Option("--hash-password", help="Read a password (stdin or prompt), print a hash for a --users file, exit.")] = False,
) -> None:
    """Serve the views over the PostgreSQL wire protocol (psql, psycopg, DBeaver, Metabase)."""
    # imported here: the wire layer's packages are the optional `serve` extra
    try:
        from queries.serve import ServeConfig, load_users, serve as run, tls_context, users_from_env
        from queries.serve import hash_password as make_hash
    except ImportError as exc:
        raise BadArgument("serve", exc.name, "is not installed: pip install 'metricstore[serve]'") from None

    if hash_password:
        password = getpass.getpass("password: ") if os.isatty(0) else input()
        print(make_hash(password))
        return
    if (tls_cert is None) != (tls_key is None):
        raise BadArgument("tls", str(tls_cert or tls_key), "give both --tls-cert and --tls-key")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("buenavista").setLevel(logging.CRITICAL)   # it logs every query text at INFO
    config = ServeConfig(
        store=open_store(store), users=load_users(users) if users else users_from_env(), host=host, port=port,
        tls=tls_context(tls_cert, tls_key) if tls_cert and tls_key else None, timeout_s=timeout,
        max_connections=max_connections)
    run(config)
