# supportbot — the two commands a fresh machine needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,eval]'
	touch $(STAMP)

install: $(STAMP) ## create ./.venv and install the project with the dev and eval extras (idempotent; reinstalls when pyproject.toml changes)

run: install ## ingest knowledge/ into ./.data and serve the API on :8080
	$(BIN)/supportbot ingest knowledge/
	$(BIN)/supportbot serve

test: install ## the whole test suite (embedded defaults, plus PostgreSQL/Redis/Chroma server)
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check app pipelines eval tests benchmarks
	$(BIN)/mypy

bench: install ## ingestion benchmark against the LangChain standard pipeline
	$(BIN)/python benchmarks/bench_ingest.py

clean:
	rm -rf .data .pytest_cache .mypy_cache .ruff_cache
