# Two commands set everything up: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-fast bench clean-venv browser

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/fornet demo --out runs/demo --force

# The browser test (tests/test_pages_in_browser.py) opens the pages fornet writes in Debian's headless Chromium.
# Installed here only when missing (CI machines reach Debian's packages and run as root); where it cannot be
# installed, the test says why and skips, except under CI, where it is required.
browser:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || \
		( (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
		|| echo "note: could not install chromium and chromium-driver; the browser test will say so" )

test: $(STAMP) browser
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/models_cpu.py --runs 7

clean-venv:
	rm -rf $(VENV)
