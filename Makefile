# Two commands matter: `make run` (the demo) and `make test` (the whole suite).
# Everything they need is installed here, so a fresh machine needs nothing else.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
DEBIAN_PACKAGES := postgresql orthanc orthanc-dicomweb chromium
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test lint bench install system-deps clean

$(PY):
	python3.11 -m venv $(VENV) || python3 -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Debian packages the integration tests run for real: PostgreSQL, Orthanc with DICOMweb,
# Chromium for the SMART app (Playwright drives it; it never downloads a browser of its own).
# Installed only when running as root with apt available; otherwise the tests say what is missing.
system-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  fi; \
	fi

run: install
	$(VENV)/bin/cdss demo

test: install system-deps
	$(VENV)/bin/pytest -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy cdss fhir_facade adapters simulators cds_hooks cdw models bench tests/support tests/deploy smart_app tests/smart_app

bench: install system-deps
	$(PY) bench/facade.py

clean:
	rm -rf $(VENV) var build *.egg-info
