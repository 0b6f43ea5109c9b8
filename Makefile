# One entry point for set-up, run, test, lint and benchmarks. CI calls `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= data
KEYS   ?= keys
HOST   ?= 127.0.0.1
PORT   ?= 8000
# Pages that may ask `make run` for trials: the trial form served locally as trial_form/README.md
# shows. An OFFLINE_SERVICE_TRIAL_ORIGINS already set in the environment wins.
TRIAL_ORIGINS ?= http://127.0.0.1:8001,http://localhost:8001

FUZZ_SECONDS ?= 300
FUZZ_TARGETS := request_files response_files archives json_bodies

.PHONY: run demo test lint format typecheck bench bench-http screenshots chromium nginx postgresql wrk unzip curl fuzz fuzz-toolchain clean

$(STAMP): pyproject.toml | fuzz-toolchain
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[server,test]'
	touch $(STAMP)

# The portal on http://127.0.0.1:8000 with a demo account, license and portal user (created once).
run: $(STAMP)
	OFFLINE_SERVICE_TRIAL_ORIGINS="$${OFFLINE_SERVICE_TRIAL_ORIGINS-$(TRIAL_ORIGINS)}" \
	  $(BIN)/offline-service serve --demo --data $(DATA) --keys $(KEYS) --host $(HOST) --port $(PORT)

# The guided tour of the offline flow with the real commands (no server).
demo: $(STAMP)
	$(BIN)/offline-service demo --data $(DATA) --keys $(KEYS)

# The browser tests drive Debian's Chromium (never a browser Playwright downloads itself); the
# deployment test (tests/test_deploy_doc.py) runs docs/DEPLOY.md's config in Debian's nginx; the
# PostgreSQL runs use OFFLINE_SERVICE_TEST_DATABASE_URL if set, else a throwaway server the session
# starts with Debian's postgresql binaries (tests/pg.py); the benchmarks' test (tests/test_benchmarks.py)
# runs their --quick modes with Debian's wrk; the zip batch tests check their output with Debian's unzip;
# the README's admin API walkthrough (tests/admin/test_walkthrough.py) runs its curl lines.
test: $(STAMP) chromium nginx postgresql wrk unzip curl
	$(BIN)/ruff check offline_service tests benchmarks
	$(BIN)/ruff format --check offline_service tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check offline_service tests benchmarks
	$(BIN)/ruff format --check offline_service tests benchmarks
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format offline_service tests benchmarks
	$(BIN)/ruff check --fix offline_service tests benchmarks

# Each fuzz target for FUZZ_SECONDS (tests/fuzz); corpora grow in .fuzz/corpus, findings land in
# .fuzz/crashes and stop the run. `make test` runs a short fixed-seed pass of each.
fuzz: $(STAMP)
	@for t in $(FUZZ_TARGETS); do \
	  $(BIN)/python -m tests.fuzz $$t --seconds $(FUZZ_SECONDS) --seed 0 \
	    --corpus .fuzz/corpus/$$t --artifacts .fuzz/crashes || exit 1; \
	done

# Every figure of the performance targets with its target (docs/PERFORMANCE.md, Method); its HTTP
# figures come from benchmarks.http, which drives wrk. Several minutes and ~2 GB of temporary disk.
bench: $(STAMP) wrk
	$(BIN)/python -m benchmarks.engine

# The portal filled with a realistic volume of records (made with the project's own operations,
# fixed clock), photographed in Debian's Chromium into docs/screenshots/ (tests/browser/screenshots.py).
screenshots: $(STAMP) chromium
	$(BIN)/python -m tests.browser.screenshots --out docs/screenshots

bench-http: $(STAMP) wrk
	$(BIN)/python -m benchmarks.http

# Debian packages, installed only when missing (CI runs as root on Debian).
chromium:
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium)

# atheris has wheels for Linux x86_64 only; elsewhere pip builds it with clang and its libFuzzer.
fuzz-toolchain:
	@[ "$$(uname -sm)" = "Linux x86_64" ] || command -v clang >/dev/null || \
	  (apt-get update && apt-get install -y --no-install-recommends clang libclang-rt-dev)

# nginx is in /usr/sbin, which a user's PATH may lack; the test makes its certificate with openssl.
nginx:
	@{ command -v nginx || test -x /usr/sbin/nginx; } >/dev/null && command -v openssl >/dev/null || \
	  (apt-get update && apt-get install -y --no-install-recommends nginx openssl)

# Only the binaries matter (/usr/lib/postgresql/*/bin): the tests run initdb and pg_ctl themselves.
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  (apt-get update && apt-get install -y --no-install-recommends postgresql)

wrk:
	@command -v wrk >/dev/null || (apt-get update && apt-get install -y --no-install-recommends wrk)

unzip:
	@command -v unzip >/dev/null || (apt-get update && apt-get install -y --no-install-recommends unzip)

curl:
	@command -v curl >/dev/null || (apt-get update && apt-get install -y --no-install-recommends curl)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .fuzz
