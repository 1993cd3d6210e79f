"""Secrets out of URLs: what every place that shows or records a URL passes it through.

A module of its own, importing only :mod:`re`: the command line's error line and log filter use
it without loading the jobs' models.
"""

from __future__ import annotations

import re

#: Query parameters whose value is a secret (case-insensitive, anywhere in the name): token, api_key,
#: access_token, apikey, client_secret, password, sig, X-Amz-Signature, X-Amz-Credential, ...
SECRET_PARAM = re.compile(r"token|key|secret|passw|pwd|auth|sig|credential|session", re.I)
_QUERY_PAIR = re.compile(r"(?P<lead>[?&;])(?P<name>[^=&#;?\s'\"<>]+)=(?P<value>[^&#;\s'\"<>]*)")
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#@\s'\"<>]*@")


def redact_url(text: str) -> str:
    """A URL, or any text naming URLs (an error, a log line), as it may be shown and recorded.

    The ``user:password@`` part goes, and the value of every query parameter named like a secret
    (``?token=``, ``&api_key=``, ``access_token``, ``X-Amz-Signature``...) becomes ``***``; other
    parameters (``?cik=``, ``&year=``) stay, so the URL still says which feed it is. This is the one
    function every place that shows a URL goes through (fetch errors, log lines, the run log, the
    jobs' state file, ``jobs run``/``jobs runs``/``schedule list`` and the CLI's error line).

    Example:
        >>> redact_url("https://u:pw@feed.example/x.json?token=abc&year=2024")
        'https://feed.example/x.json?token=***&year=2024'
    """
    text = _USERINFO.sub(lambda m: m["scheme"], text)
    return _QUERY_PAIR.sub(
        lambda m: f"{m['lead']}{m['name']}=***" if SECRET_PARAM.search(m["name"]) and m["value"] else m[0], text)
