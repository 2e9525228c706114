"""The SQL store on both backends: atomic units, versions, conflicts, migrations."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from fhir_facade.errors import OperationOutcomeError
from fhir_facade.search.query import parse_search
from fhir_facade.store.sql_store import SqlStore
from fhir_facade.store.tables import metadata


@pytest.fixture
def store(database_url: str) -> Iterator[SqlStore]:
    s = SqlStore(database_url)
    yield s
    s.close()


def patient(family: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": family}], **extra}


def count(store: SqlStore, rtype: str, *pairs: tuple[str, str]) -> int:
    with store.unit() as u:
        total = u.search(parse_search(rtype, list(pairs))).total
    assert total is not None
    return total


def test_migrations_match_the_table_definitions(store: SqlStore) -> None:
    with store.writer.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_migrating_twice_is_harmless(database_url: str) -> None:
    first = SqlStore(database_url)
    with first.unit() as u:
        u.create(patient("Kept"))
    first.close()
    again = SqlStore(database_url)  # migrates again: already at head, nothing to do
    try:
        again.check()
        assert count(again, "Patient") == 1  # the data written before is still there
        with again.writer.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        again.close()


def test_a_failing_unit_writes_nothing(store: SqlStore) -> None:
    with pytest.raises(OperationOutcomeError), store.unit() as u:
        u.create(patient("Kept"))
        u.create({"resourceType": "Patient", "birthDate": "not a date"})
    assert count(store, "Patient") == 0


def test_versions_and_history(store: SqlStore) -> None:
    with store.unit() as u:
        first = u.create(patient("One")).resource
    body = orjson.loads(first.content or b"")
    with store.unit() as u:
        second = u.update({**body, "active": True}, if_match=1)
        same = u.update({**body, "active": True})
    assert second.resource.version_id == 2 and second.changed
    assert same.resource.version_id == 2 and not same.changed
    with store.unit() as u:
        assert u.vread("Patient", first.id, 1).content == first.content
        deleted = u.delete("Patient", first.id)
        assert deleted is not None and deleted.version_id == 3
        assert u.delete("Patient", first.id) is None
        page = u.history("Patient", first.id, since_us=None, count=10, after=None)
    assert [e.version_id for e in page.entries] == [3, 2, 1]
    assert [e.method for e in page.entries] == ["DELETE", "PUT", "POST"]
    with pytest.raises(OperationOutcomeError) as gone:
        store.read("Patient", first.id)
    assert gone.value.status == 410


def test_stale_if_match_is_refused(store: SqlStore) -> None:
    with store.unit() as u:
        created = u.create(patient("Two")).resource
    body = {**orjson.loads(created.content or b""), "active": False}
    with store.unit() as u:
        u.update(body, if_match=1)
    with pytest.raises(OperationOutcomeError) as info, store.unit() as u:
        u.update({**body, "active": True}, if_match=1)
    assert info.value.status == 412


def test_an_update_replaces_the_search_index(store: SqlStore) -> None:
    with store.unit() as u:
        created = u.create(patient("Before")).resource
    body = orjson.loads(created.content or b"")
    with store.unit() as u:
        u.update({**body, "name": [{"family": "After"}]})
    assert count(store, "Patient", ("family", "Before")) == 0
    assert count(store, "Patient", ("family", "After")) == 1


def test_create_then_update_in_one_unit_leaves_one_index_row_set(store: SqlStore) -> None:
    with store.unit() as u:
        created = u.create(patient("Early")).resource
        body = orjson.loads(created.content or b"")
        u.update({**body, "name": [{"family": "Late"}]})
    assert count(store, "Patient", ("family", "Early")) == 0
    assert count(store, "Patient", ("family", "Late")) == 1


def test_concurrent_writers_all_land(store: SqlStore) -> None:
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(10):
                with store.unit() as u:
                    u.create(patient(f"W{n}-{i}"))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert count(store, "Patient") == 40


def test_prefetched_upserts_match_row_by_row_upserts(store: SqlStore) -> None:
    """`prefetch` (the sync's one lookup per batch) gives the same versions as plain updates:
    unchanged, changed, created, deleted-then-updated, created-in-the-unit-then-updated."""
    with store.unit() as unit:
        for name in ("same", "changed", "gone"):
            unit.update({**patient(name), "id": name})
    with store.unit() as unit:
        unit.delete("Patient", "gone")
    with store.unit() as unit:
        prefetch = unit.prefetch  # type: ignore[attr-defined]  # SqlUnit only
        prefetch([("Patient", i) for i in ("same", "changed", "gone", "new", "twice", "dup")])
        assert not unit.update({**patient("same"), "id": "same"}).changed
        assert unit.update({**patient("Changed"), "id": "changed"}).resource.version_id == 2
        revived = unit.update({**patient("gone"), "id": "gone"})
        assert (revived.created, revived.resource.version_id) == (True, 3)
        assert unit.update({**patient("new"), "id": "new"}).created
        unit.update({**patient("twice"), "id": "twice"})
        assert unit.update({**patient("Twice"), "id": "twice"}).resource.version_id == 2
        unit.update({**patient("dup"), "id": "dup"})
        unit.delete("Patient", "dup")
        assert unit.update({**patient("dup"), "id": "dup"}).resource.version_id == 3
    with store.read_unit() as unit:
        assert unit.read("Patient", "changed").version_id == 2
        assert unit.read("Patient", "twice").version_id == 2
        assert unit.read("Patient", "same").version_id == 1
    assert count(store, "Patient", ("family", "Changed")) == 1
    assert count(store, "Patient") == 6
