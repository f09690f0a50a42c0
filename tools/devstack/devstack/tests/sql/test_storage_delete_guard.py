"""Hosted Storage's delete guard (supabase/storage migration 0055): a direct SQL DELETE on
storage.objects or storage.buckets is refused, so rows and bytes only go together through the
Storage API, which allows its own deletes for one transaction."""

from __future__ import annotations

import psycopg
import pytest

from devstack import paths
from devstack.sqlapi import SqlApi

pytestmark = pytest.mark.sql

MESSAGE = "Direct deletion from storage tables is not allowed. Use the Storage API instead."


def _bucket_with_object(api: SqlApi) -> None:
    api.admin("insert into storage.buckets (id, name) values ('guarded', 'guarded')")
    api.admin("insert into storage.objects (bucket_id, name) values ('guarded', 'a/b.txt')")


@pytest.mark.parametrize("table", ["storage.objects", "storage.buckets"])
def test_a_direct_delete_is_refused_and_changes_nothing(api: SqlApi, table: str) -> None:
    _bucket_with_object(api)
    for run in (api.admin, api.as_service):
        with pytest.raises(psycopg.Error) as err:
            run(f"delete from {table}")  # table: a constant above
        assert err.value.sqlstate == "42501"
        assert err.value.diag.message_primary == MESSAGE
        assert err.value.diag.message_hint == "This prevents accidental data loss from orphaned objects."
    assert api.count("select count(*) from storage.objects where bucket_id = 'guarded'") == 1
    assert api.count("select count(*) from storage.buckets where id = 'guarded'") == 1


def test_the_storage_api_setting_allows_deletes_for_one_transaction(api: SqlApi, dbname: str) -> None:
    _bucket_with_object(api)
    with psycopg.connect(paths.database_url(dbname)) as conn:
        with conn.transaction():
            conn.execute("select set_config('storage.allow_delete_query', 'true', true)")
            conn.execute("delete from storage.objects where bucket_id = 'guarded'")
        # The setting was local to that transaction: the next delete is refused again.
        with pytest.raises(psycopg.Error) as err, conn.transaction():
            conn.execute("delete from storage.buckets where id = 'guarded'")
        assert err.value.sqlstate == "42501"
    assert api.count("select count(*) from storage.objects where bucket_id = 'guarded'") == 0
    assert api.count("select count(*) from storage.buckets where id = 'guarded'") == 1
