# The two commands the README names: `make demo` and `make test`. Everything they need installs here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

# Offline and quiet at run time: no model hub, no telemetry, a Prefect server start that survives a busy CI box.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export DO_NOT_TRACK := 1
export UNSTRUCTURED_DISABLE_NOTICE := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 90
export GX_ANALYTICS_ENABLED := false
export TOKENIZERS_PARALLELISM := false
export HF_HUB_DISABLE_PROGRESS_BARS := 1
export LANCEDB_LOG := error

.PHONY: browser install demo test lint typecheck bench clean lock up serve notebook

# requirements.lock pins every package to the versions CI tested (Prefect's server breaks with newer
# SQLAlchemy and fastapi than a fresh resolve picks). `make lock` refreshes it; LOCK= installs without it.
LOCK ?= -c requirements.lock

install: $(VENV)/.installed

# torch first and alone: 2.13.0 is the CPU wheel on this machine's disk; resolving `torch` from the
# registry would pull a multi-GB CUDA build. uv then installs the rest, within the lock, and keeps that torch.
# Bytecode is compiled at install (pip does so for torch; uv only when asked): where PYTHONDONTWRITEBYTECODE is
# set, as in many containers and on the machine the README's figures come from, every process otherwise
# compiles each module it imports, every time (`import lancedb` 5.9 s against 2.5 s; README "Cold starts").
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python $(LOCK) -e ".[dev]"
	$(BIN)/python -m compileall -q src flows checks >/dev/null
	$(BIN)/python -c "import torch; assert '+cpu' in torch.__version__ or not torch.cuda.is_available(), torch.__version__"
	touch $@

demo: install
	$(BIN)/kbcurator reindex --config kb_sources/sample.yaml
	$(BIN)/kbcurator search "Can my dog get COVID-19?" -k 3 --config kb_sources/sample.yaml
	$(BIN)/kbcurator gaps --config kb_sources/sample.yaml
	$(BIN)/kbcurator report --config kb_sources/sample.yaml

lint: install
	$(BIN)/ruff check src tests flows checks bench
	$(BIN)/ruff format --check src tests flows checks bench
	$(BIN)/lint-imports --no-logo

typecheck: install
	$(BIN)/mypy

test: install browser
	$(MAKE) --no-print-directory lint typecheck
	$(BIN)/pytest

# The report's browser test drives Debian's Chromium with Playwright (no Playwright browser download). Where
# apt cannot install it (no root, no Debian), the test skips and says so.
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo "warning: could not install chromium; the browser test will skip"

# Re-resolve every dependency from pyproject.toml into a fresh venv, write requirements.lock from what got
# installed, then run the whole suite on it (the real-server deployment test included). Commit the lock if green.
lock:
	rm -rf $(VENV)
	$(MAKE) --no-print-directory install LOCK=
	{ grep '^#' requirements.lock; $(BIN)/uv pip freeze --python $(BIN)/python --exclude-editable \
		| grep -viE '^(torch|pip|uv|setuptools)=='; } > requirements.lock.new && mv requirements.lock.new requirements.lock
	touch $(VENV)/.installed
	$(MAKE) --no-print-directory test

# The on-call engineer's stack: a Prefect server on 127.0.0.1, the work pool, every deployment and a worker.
up: install
	$(BIN)/kbcurator up

# The KB owner's review app on http://127.0.0.1:8765 (users: README "Review app").
serve: install
	$(BIN)/kbcurator serve --config kb_sources/sample.yaml

# JupyterLab on notebooks/, bound to 127.0.0.1; the notebooks read the demo's index (run `make demo` first).
notebook: install
	$(BIN)/uv pip install --quiet --python $(BIN)/python $(LOCK) -e ".[dev,notebook]"
	$(BIN)/jupyter lab --ip 127.0.0.1 --notebook-dir notebooks

bench: install
	$(BIN)/python bench/build_bench.py

clean:
	rm -rf .kbcurator
