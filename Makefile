# One command each for lint, type-check and test: the same ones CI runs.
.PHONY: install lint typecheck test test-fast demo

install:
	bash scripts/install.sh

lint:
	ruff check src tests benchmarks
	ruff format --check src tests benchmarks

typecheck:
	mypy

test:
	python -m pytest -q

test-fast:
	python -m pytest -q -m "not slow"

demo:
	leanfit run
