# Two entry points: `make demo` and `make test`. Both bootstrap .venv on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
ARGS   ?=
# offline install bundles (deploy/bundle.sh): gateway architectures and their Python
BUNDLE_ARCHS  ?= x86_64 aarch64
BUNDLE_PYTHON ?= 3.11

.PHONY: demo test lint typecheck unit bench dashboards bundle clean

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

bundle: $(STAMP)
	PYTHON_BIN=$(BIN)/python bash deploy/bundle.sh $(foreach a,$(BUNDLE_ARCHS),--arch $(a)) --python $(BUNDLE_PYTHON)

dashboards: $(STAMP)
	$(BIN)/python deploy/grafana/generate.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache dist
