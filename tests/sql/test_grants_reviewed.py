"""Every function in the exposed schemas has a grant review (supabase/grants_reviewed.json) that
matches the catalog: a new function, or a changed grant, fails here until it is reviewed."""

from __future__ import annotations

import psycopg
import pytest

from bench.attack import grants
from devstack import paths

pytestmark = pytest.mark.sql


def test_every_exposed_function_has_the_reviewed_grants(dbname: str) -> None:
    review = grants.reviewed()
    found = grants.catalog(paths.database_url(dbname), review["schemas"])
    assert grants.compare(found, review) == []
    assert set(found) <= set(review["functions"])


def test_an_unreviewed_function_and_a_widened_grant_are_findings(dbname: str) -> None:
    with psycopg.connect(paths.admin_url(dbname), autocommit=True) as conn:
        conn.execute("create function public.sneaky() returns int language sql as 'select 1'")
        conn.execute("grant execute on function public.cancel_job(uuid) to anon")
    review = grants.reviewed()
    findings = grants.compare(grants.catalog(paths.database_url(dbname), review["schemas"]), review)
    assert {(f["function"], f["problem"]) for f in findings} == {
        ("public.sneaky()", "not in supabase/grants_reviewed.json"),
        ("public.cancel_job(uuid)", "grants differ from the review"),
    }
