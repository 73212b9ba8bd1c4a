# Two entry points: `make demo` and `make test`. Both bootstrap .venv on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
ARGS   ?=

.PHONY: demo test lint typecheck unit bench dashboards clean

$(STAMP): pyproject.toml
	@bash scripts/bootstrap.sh "$(PYTHON)" "$(VENV)"
	@rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)
	$(BIN)/edge-agent demo $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest $(ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench $(ARGS)

dashboards: $(STAMP)
	$(BIN)/python deploy/grafana/generate.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
