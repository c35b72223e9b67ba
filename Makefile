# Art Factory: local runs, services and the test suite (GNU make).
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
PORT ?= 8000
WORKERS ?= 2
PYTEST_ARGS ?=
# Test processes per database (pytest-xdist); most cases wait on servers,
# subprocesses and the browser, so three share two cores well.
TEST_PROCESSES ?= 3
XDIST := -n $(TEST_PROCESSES) --dist worksteal
# Seconds to wait for a service to answer after starting it.
SERVICE_WAIT ?= 30

# Test runs use their own databases so they never touch a developer's data.
# Override them to run two suites side by side.
TEST_PG_NAME ?= artfactory
TEST_REDIS_SQLITE ?= redis://127.0.0.1:6379/14
TEST_REDIS_PG ?= redis://127.0.0.1:6379/15
SQLITE_TEST_ENV := DATABASE_URL=sqlite:///$(CURDIR)/var/test.sqlite3 \
	REDIS_URL=$(TEST_REDIS_SQLITE)
PG_TEST_ENV := DATABASE_URL=postgres://postgres@127.0.0.1:5432/$(TEST_PG_NAME) \
	REDIS_URL=$(TEST_REDIS_PG)

PG_READY := pg_isready -q -h 127.0.0.1 -p 5432
PG_START := pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
REDIS_READY := $(PY) -c 'import redis; redis.Redis(socket_timeout=1).ping()' 2>/dev/null
REDIS_START := redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 \
	--save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log

.PHONY: venv test-venv run dev audit services chromium test test-slow soak bench bench-scale bench-hosts bench-load bench-first-run check clean screenshots

# Packages go in with uv (an installer only, many times faster than pip from
# a warm cache); pip does the work wherever uv cannot be had.
UV_VERSION := 0.13.8
UV := $(VENV)/bin/uv
INSTALL = if [ -x $(UV) ] || $(PY) -m pip install -q uv==$(UV_VERSION); \
	then $(UV) pip install --compile-bytecode --python $(PY) $(1); else $(PY) -m pip install $(1); fi

# The runtime only: what `make run` needs.
venv: $(STAMP)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(call INSTALL,-r requirements.txt)
	touch $@

# The runtime plus the test tools.
test-venv: $(TEST_STAMP)

$(TEST_STAMP): $(STAMP) requirements-test.txt
	$(call INSTALL,-r requirements-test.txt)
	touch $@

# gunicorn serves the admin and the hashed static files collected here.
# collectstatic needs no database: it runs beside the migrations.
run: venv
	@STATIC_MANIFEST=1 $(PY) manage.py collectstatic --noinput --verbosity 0 & static=$$!; \
	$(PY) manage.py migrate --noinput && $(PY) manage.py load_seed_data; seeded=$$?; \
	wait $$static && [ $$seeded -eq 0 ]
	$(PY) manage.py run_local --port $(PORT) --workers $(WORKERS)

# runserver with autoreload and DEBUG on, for working on the code.
dev: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_seed_data
	DEBUG=1 $(PY) manage.py run_local --procfile Procfile.dev --port $(PORT) --workers $(WORKERS)

# $(call ensure_service,NAME,READY,START,STARTER): start NAME with START
# when READY fails and STARTER exists, then wait until READY succeeds.
define ensure_service
	@if $(2); then echo "$(1): answering"; \
	elif ! command -v $(4) >/dev/null; then \
		echo "$(1): not answering on 127.0.0.1 and $(4) is not installed" >&2; exit 1; \
	else \
		echo "$(1): starting"; $(3) || true; \
		for i in $$(seq $$(( $(SERVICE_WAIT) * 4 ))); do $(2) && break; sleep 0.25; done; \
		if $(2); then echo "$(1): answering"; \
		else echo "$(1): still not answering after $(SERVICE_WAIT)s" >&2; exit 1; fi; \
	fi
endef

services: venv
	$(call ensure_service,PostgreSQL,$(PG_READY),$(PG_START),pg_ctlcluster)
	$(call ensure_service,Redis,$(REDIS_READY),$(REDIS_START),redis-server)

chromium:
	@if [ -x /usr/bin/chromium ]; then echo "Chromium: /usr/bin/chromium"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Chromium: installing Debian's chromium"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
			|| echo "Chromium: install failed; browser tests will skip" >&2; \
	else echo "Chromium: /usr/bin/chromium is missing and installing it needs root;" \
		"browser tests will skip"; fi

# Both databases run even when the first fails; either failing fails make.
# Cases marked `once` (the browser, the fault matrices) prove nothing new
# on a second database, so they run on PostgreSQL only.
test: test-venv services chromium
	@mkdir -p var && rm -f var/test.sqlite3*; sqlite=0; pg=0; \
	echo "=== pytest on SQLite (without the cases marked once) ==="; \
	$(SQLITE_TEST_ENV) $(PY) -m pytest $(XDIST) -m "not once and not slow" $(PYTEST_ARGS) || sqlite=$$?; \
	echo "=== pytest on PostgreSQL ==="; \
	$(PG_TEST_ENV) $(PY) -m pytest $(XDIST) -m "not slow" $(PYTEST_ARGS) || pg=$$?; \
	echo "=== SQLite: exit $$sqlite, PostgreSQL: exit $$pg ==="; \
	[ $$sqlite -eq 0 ] && [ $$pg -eq 0 ]

# The long fault runs (`slow`): the Replicate kill points, a Redis flush, the gentler
# outages and the 200-item two-crew run, on PostgreSQL.
test-slow: test-venv services
	$(PG_TEST_ENV) $(PY) -m pytest $(XDIST) -m slow $(PYTEST_ARGS)

# Production under every fault at once, 2,000 items (see tests/soak.py);
# the figures go to docs/reliability.md, and any loss fails the target.
soak: test-venv services
	$(PY) -m tests.soak --write-doc

screenshots: test-venv services chromium
	SCREENSHOT_DIR=$(CURDIR)/docs/screenshots $(SQLITE_TEST_ENV) $(PY) -m pytest tests/browser -q

# Known vulnerabilities in the pinned requirements. Needs the vulnerability
# service; without it this says that nothing was checked and exits 0.
AUDIT_VENV := var/audit-venv
$(AUDIT_VENV)/.installed: requirements-audit.txt
	test -x $(AUDIT_VENV)/bin/python || $(PYTHON) -m venv $(AUDIT_VENV)
	$(AUDIT_VENV)/bin/python -m pip install -q -r requirements-audit.txt
	touch $@

audit: $(AUDIT_VENV)/.installed
	$(AUDIT_VENV)/bin/python tools/audit.py

bench: venv
	$(PY) bench/run.py

# Production at ten times P1 (10,000 items, 1,000 slots; webhooks and
# polling) on the fal fake; minutes per run, so not part of `make bench`.
bench-scale: test-venv services
	$(PY) bench/scale.py --write-doc

# Production on one host, then two (network namespaces on this machine,
# sharing PostgreSQL and Redis over a bridge); needs root and socat.
bench-hosts: test-venv services
	@command -v socat >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq socat; } \
		|| { echo "bench-hosts needs socat" >&2; exit 1; }
	$(PY) bench/hosts.py --write-doc

# P5 alone: the admin under load on PostgreSQL (`make bench` runs it too).
bench-load: venv
	$(PY) bench/p5_admin_load.py

# A fresh clone of this checkout to a login that answers, timed by phase;
# COLD=1 empties the uv and pip caches first.
bench-first-run:
	$(PYTHON) bench/first_run.py $(if $(COLD),--cold)

check: venv
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

clean:
	rm -rf var/test*
