# gridmap: two commands do everything on a fresh machine (see README.md).
#   make demo   install everything, seed the demo city if the database is empty, serve :8000
#   make test   install everything, run the whole test suite on SpatiaLite and PostGIS
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamp
PG_VERSION ?= 15
# Installing Debian packages needs root; as another user the same command runs via sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test serve install assets system-deps postgis browser lint clean

demo: install assets  ## the main job
	$(BIN)/gridmap demo --if-empty
	$(BIN)/gridmap serve

serve: install assets
	$(BIN)/gridmap serve

# One pytest worker per core; a file's tests stay on one worker, so module fixtures (the
# city-scale database, a browser) are built once. Each worker has its own PostGIS database.
test: install assets postgis browser  ## the whole suite
	$(BIN)/python -m pytest -n auto --dist loadfile $(PYTEST_ARGS)

install: system-deps $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# SpatiaLite for the embedded default; Node.js only to fetch the map assets from npm.
system-deps:
	@missing=""; \
	dpkg -s libsqlite3-mod-spatialite >/dev/null 2>&1 || missing="$$missing libsqlite3-mod-spatialite"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $$missing; \
	fi

# PostGIS for the server backend, in the PostgreSQL that runs on 127.0.0.1:5432.
postgis:
	@dpkg -s postgresql-$(PG_VERSION)-postgis-3 >/dev/null 2>&1 || { \
	  echo "installing postgresql-$(PG_VERSION)-postgis-3"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq postgresql-$(PG_VERSION)-postgis-3; }
	@pg_isready -q -h 127.0.0.1 -p 5432 || { \
	  echo "starting PostgreSQL $(PG_VERSION)"; \
	  $(SUDO) pg_ctlcluster --skip-systemctl-redirect $(PG_VERSION) main start; sleep 2; }

# Debian's Chromium for the browser tests (Playwright drives it; never `playwright install`,
# which downloads a browser), and a CJK font so pages and screenshots show Chinese names.
browser:
	@missing=""; \
	dpkg -s chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || missing="$$missing fonts-wqy-microhei"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $$missing; \
	fi

assets: maps/static/vendor/build-info.json

maps/static/vendor/build-info.json: maps/assets/package.json maps/assets/package-lock.json maps/assets/build.py
	cd maps/assets && npm ci --no-audit --no-fund --loglevel=error && $(abspath $(BIN))/python build.py

lint: install
	$(BIN)/ruff check geo api maps data tests benchmarks

clean:
	rm -rf $(VENV) maps/static/vendor maps/assets/node_modules
