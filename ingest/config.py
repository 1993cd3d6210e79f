"""Configuration: typed, read once at the entry point, with ``METRICSTORE_`` environment overrides."""

from __future__ import annotations

from pathlib import Path

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
