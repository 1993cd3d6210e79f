"""Configuration: typed, read once at the entry point, with ``METRICSTORE_`` environment overrides."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    """Where the store and the catalog live, and how strict ingest is.

    Every field can be set from the environment: ``METRICSTORE_STORE=/data/store``.
    """

    model_config = SettingsConfigDict(env_prefix="METRICSTORE_", extra="ignore")

    store: Path = Path("data/store")
    catalog: Path = PROJECT_ROOT / "data" / "catalog"
    strict_catalog: bool = False


def read_toml(path: Path, *, missing: str) -> dict[str, Any]:
    """Read a TOML file of ours (jobs, mappings), or fail with one line naming the file.

    Raises:
        ConfigError: the file is missing (``missing`` says what to do) or is not valid TOML.
    """
    from ingest.errors import ConfigError

    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(str(path), missing) from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(str(path), f"is not valid TOML: {exc}") from None
