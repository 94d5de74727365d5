# codesuggest: the README's two commands are `make run` and `make test`; both install first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
CS := $(BIN)/codesuggest
# Reference data: ./data once `make data` has filled it, else the shared copy beside the clone.
DATA_DIR ?= $(shell if [ -d data/icd10cm ]; then echo data; else echo ../shared/data; fi)
KB_DIR ?= models/kb
MODEL_DIR ?= models/default
MODEL_NAME ?= codesuggest-codiesp
MODEL_VERSION ?= 2026.11.1
CORPUS_DIR ?= build/corpora
SAMPLE ?= corpora/samples/ankle_sprain.txt
STAMP := $(VENV)/.installed

.PHONY: install run test lint data kb corpora model evaluate bench bench-tools browser serve clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

# Build what is missing (the knowledge base and default model are committed), then suggest codes
# for a sample note.
run: install
	@test -f $(KB_DIR)/manifest.json || $(CS) kb build --data-dir $(DATA_DIR) --out $(KB_DIR)
	@test -f $(MODEL_DIR)/manifest.json || $(MAKE) model
	$(CS) suggest $(SAMPLE) --model $(MODEL_DIR)

test: install lint browser
	$(BIN)/python -m pytest

# Debian's chromium for the workbench's browser tests (Playwright drives it; `playwright install`
# needs the internet). Installed where this runs as root with apt; the tests skip, saying why, elsewhere.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& { apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 \
		&& apt-get install -y -q chromium >/dev/null 2>&1; }; }; } \
		|| echo "test: chromium not installed (apt-get install chromium); the browser tests will be skipped"

# Imports flow one way (layers in pyproject.toml [tool.importlinter]) and form no cycle, function-level
# imports included (../shared/tools/import_cycles.py prints any).
lint: install
	$(BIN)/ruff check pipeline service corpora benchmarks tests
	$(BIN)/ruff format --check pipeline service corpora benchmarks tests
	$(BIN)/mypy pipeline service corpora benchmarks
	$(BIN)/lint-imports --no-cache
	@cycles=$$($(BIN)/python ../shared/tools/import_cycles.py pipeline service corpora benchmarks) \
		|| { echo "$$cycles"; exit 1; }

# Official CDC/CMS/Zenodo downloads into ./data; falls back to ../shared/data where offline.
data: install
	$(CS) data fetch --out data --fallback ../shared/data

kb: install
	$(CS) kb build --data-dir $(DATA_DIR) --out $(KB_DIR)

corpora: install
	@mkdir -p $(CORPUS_DIR)
	$(CS) corpus import-codiesp $(DATA_DIR)/codiesp/train --out $(CORPUS_DIR)/codiesp-train.jsonl
	$(CS) corpus import-codiesp $(DATA_DIR)/codiesp/dev --out $(CORPUS_DIR)/codiesp-dev.jsonl

model: corpora
	$(CS) train --corpus $(CORPUS_DIR)/codiesp-train.jsonl --dev $(CORPUS_DIR)/codiesp-dev.jsonl --kb $(KB_DIR) --out $(MODEL_DIR) \
		--name $(MODEL_NAME) --version $(MODEL_VERSION)

evaluate: corpora
	$(CS) evaluate --corpus $(CORPUS_DIR)/codiesp-dev.jsonl --model $(MODEL_DIR) --system ICD10CM
	$(CS) evaluate --corpus corpora/synthetic/encounters.jsonl --model $(MODEL_DIR) --encounter

# wrk (Debian package) loads the service without taking the CPU the service needs; the service
# benchmark falls back to its Python client alone where it cannot be installed.
bench-tools:
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get install -y -q wrk >/dev/null 2>&1; } \
		|| echo "bench: wrk not installed (apt-get install wrk); the service benchmark uses its Python client only"

bench: corpora bench-tools
	$(BIN)/python -m benchmarks.model --data-dir $(DATA_DIR) --kb $(KB_DIR) --model $(MODEL_DIR) --corpus-dir $(CORPUS_DIR)
	$(BIN)/python -m benchmarks.serving --model $(MODEL_DIR) --corpus $(CORPUS_DIR)/codiesp-dev.jsonl

serve: install
	$(CS) serve

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
