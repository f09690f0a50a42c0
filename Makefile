# Two commands: `make demo` runs the main job on the local stack; `make test` runs every test.
# Both install what they need first (scripts/setup.sh is idempotent).
PY := .venv/bin/python
export PYTHONUNBUFFERED := 1

.PHONY: setup setup-bench bench chaos demo demo-sql test lint test-python test-sql test-plugin stack-up stack-down clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) scripts/demo.py

demo-sql: setup
	$(PY) scripts/demo_sql.py

# Side-by-side benchmarks (not part of `make test`): BENCH_ARGS="pickup drain --quick" to narrow.
setup-bench:
	@bash scripts/setup_bench.sh

bench: setup-bench
	.venv-bench/bin/python -m bench $(BENCH_ARGS)

# Fault injection under AI load (~10 min; CHAOS_ARGS="--quick" for ~2 min); see README "Chaos suite".
chaos: setup-bench
	.venv-bench/bin/python -m bench chaos $(CHAOS_ARGS)

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy .
	.venv/bin/lint-imports --no-logo

test-sql: setup
	$(PY) -m pytest tests/sql tests/unit tools/devstack/devstack/tests/sql tools/devstack/devstack/tests/unit -q

test-python: setup
	$(PY) -m devstack db up
	$(PY) -m pytest -q

test-plugin: setup
	cd plugin-client && npm test && npm run build

test: setup
	bash scripts/test.sh

stack-up: setup
	$(PY) -m devstack up

stack-down:
	$(PY) -m devstack down

clean:
	-$(PY) -m devstack down
	rm -rf .devstack .venv-bench .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
