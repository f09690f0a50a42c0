"""The repository's root conftest: devstack's shared fixtures (pg_cluster, the SQL template
databases, the Supabase ``stack``) for both test trees, tests/ (the product's) and
tools/devstack/devstack/tests/ (devstack's own). pytest only honours ``pytest_plugins`` here."""

pytest_plugins = ("devstack.testing.fixtures",)
