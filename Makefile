# The two commands: `make demo` and `make test`. Both install what they need (Python deps in .venv,
# Debian packages, and Asterisk: the system's if >= 20, else a Debian sid root built once with debootstrap).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := espeak-ng sox debootstrap sip-tester chromium fonts-dejavu-core systemd

.PHONY: deps system-deps asterisk test unit lint demo bench screenshots clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# Browser libraries the panel serves (JsSIP for computer audio), bundled from the pinned lockfile; the panel
# never fetches code at run time. Debian's npm only if the machine has none (a NodeSource nodejs brings its own).
JSSIP := node_modules/.phonebank/jssip.min.js

$(JSSIP): package.json package-lock.json
	@command -v npm >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm; }
	npm ci
	npm run --silent build

deps: $(STAMP) system-deps $(JSSIP)

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# Build (or find) the Asterisk the project runs on; fails loudly if it cannot.
asterisk: deps
	$(BIN)/python -c "from phonebank.settings import Settings; from phonebank.asterisk import AsteriskRuntime as A; print('asterisk root:', A.provision(Settings.from_env()).root)"

# ruff on everything, mypy on the source packages (pyproject.toml [tool.mypy]).
lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: deps
	$(BIN)/pytest -q -m "not asterisk"

test: deps asterisk lint
	$(BIN)/pytest -v -rA --durations=10

demo: deps asterisk
	$(BIN)/phonebank demo

# The panel's main screens as PNG in docs/screenshots (offline: no PBX needed).
screenshots: deps
	$(BIN)/phonebank screenshots --out docs/screenshots

bench: deps asterisk
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python bench/connect_latency.py
	$(BIN)/python bench/capacity.py --volunteers 10 --minutes 1

clean:
	rm -rf $(VENV) node_modules build *.egg-info .pytest_cache .ruff_cache .mypy_cache
