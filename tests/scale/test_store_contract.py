"""The store contract (``tests/store/contract.py``) on S3: a real S3-compatible server (moto's
server mode, the ``s3_server`` fixture) on 127.0.0.1, and what only an object store promises."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from store import Store
from store.backends import staging_path
from store.verify import verify
from tests.store.contract import StoreContract, batch


class TestS3Store(StoreContract):
    @pytest.fixture(autouse=True)
    def _server(self, s3_server: dict[str, str]) -> None:
        self.env = s3_server

    def create_store(self) -> Store:
        return Store.create(f"s3://metricstore-test/stores/{uuid.uuid4().hex[:12]}")

    def put_raw(self, store: Store, name: str, data: bytes) -> None:
        import boto3

        key = str(store.root).split("metricstore-test/", 1)[1] + "/" + name
        boto3.client("s3").put_object(Bucket="metricstore-test", Key=key, Body=data)

    def missing_root(self) -> str:
        return "s3://metricstore-test/stores/nothing-here"

    def test_a_commit_never_overwrites_an_object(self) -> None:
        s = self.create_store()
        r = s.append(batch(1))
        assert r.path is not None
        files: Any = s.root.files  # type: ignore[union-attr]
        with pytest.raises(FileExistsError):
            files.put_new(f"events/{r.path.name}", b"another writer's bytes")
        assert verify(s) == []

    def test_stores_created_at_once_on_one_machine_all_get_their_first_commits(self) -> None:
        """Every store's first (empty) commit has the same id, and is staged in the machine's one
        staging folder: stores created at once must not take each other's staged files."""
        assert staging_path("0" * 32) != staging_path("0" * 32)
        errors: list[BaseException] = []
        start = threading.Barrier(6)

        def create() -> None:
            try:
                start.wait()
                for _ in range(3):
                    assert verify(self.create_store()) == []
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=create) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []

    def test_nothing_is_staged_in_the_bucket(self) -> None:
        s = self.create_store()
        s.append(batch(2))
        files: Any = s.root.files  # type: ignore[union-attr]
        assert files.list("_tmp") == [] and files.list("_lock") == []
        assert files.exists("metricstore.json")
