"""The store contract (``tests/store/contract.py``) on a local folder."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from store import Store
from tests.store.contract import StoreContract


class TestLocalStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _folder(self, tmp_path: Path) -> None:
        self.folder = tmp_path

    def create_store(self) -> Store:
        return Store.create(self.folder / f"store-{uuid.uuid4().hex[:8]}")

    def put_raw(self, store: Store, name: str, data: bytes) -> None:
        (Path(store.root) / name).write_bytes(data)

    def missing_root(self) -> str:
        return str(self.folder / "nothing-here")
