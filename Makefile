# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
PORT ?= 5000
# The app reads PORT too: in development, links in emails and pages point at this port.
export PORT
CHROMIUM := /usr/bin/chromium

.PHONY: axe designsystemet icons translations messages run serve test test-fast install install-test db browser lint format bench bench-page-weight bench-lighthouse bench-search bench-import-web wrk postgis clean security lock
LOCK := requirements.lock

# Reinstall only when the dependency list changes.
# Every install takes the exact versions in $(LOCK), so all machines run (and pip-audit
# checks) the same code.
$(BIN)/activate: setup.cfg pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c $(LOCK) -e .
	touch $(BIN)/activate

# The compiled catalogues (.mo) are built from the .po sources in the repo, never committed.
PO_FILES := $(wildcard clinic_finder/translations/*/LC_MESSAGES/messages.po)
MO_FILES := $(PO_FILES:.po=.mo)

%.mo: %.po $(BIN)/activate
	$(BIN)/pybabel compile --use-fuzzy -i $< -o $@ >/dev/null

install: $(BIN)/activate $(MO_FILES)

## Compile the translations (make run and make test do it too)
translations: $(MO_FILES)

## After changing words in code or templates: extract them and update the catalogues
## (--ignore-dirs: pybabel otherwise skips folders starting with "_", like templates/_macros)
messages: $(BIN)/activate
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -k N_ --ignore-dirs '.*' --no-location --sort-output -o clinic_finder/translations/messages.pot .
	$(BIN)/pybabel update -i clinic_finder/translations/messages.pot -d clinic_finder/translations --no-fuzzy-matching

$(VENV)/.test-installed: $(BIN)/activate $(MO_FILES)
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[test,dev]'
	touch $@

## Re-pin every dependency to the newest versions setup.cfg allows (after editing setup.cfg)
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet -e '.[test,dev]'
	{ sed -n '1,3p' $(LOCK); .venv-lock/bin/pip freeze --exclude-editable; } > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf .venv-lock

install-test: $(VENV)/.test-installed

## Prepare the database: migrate, then load postcodes and the demo clinics if empty.
db: install
	$(FLASK) db upgrade
	$(FLASK) clinics refresh-json
	$(FLASK) postcodes load --if-empty
	$(FLASK) clinics import data/clinics.csv --if-empty

## Install, prepare the SQLite database and serve on http://127.0.0.1:$(PORT)
run: db
	$(FLASK) run --host 127.0.0.1 --port $(PORT)

## Production server: gunicorn with gunicorn.conf.py (GUNICORN_* variables; see
## docs/deploy.md). Refuses to start unless APP_ENV=production and production's settings
## are set. Run `flask db upgrade` and `flask clinics refresh-json` once per deploy before,
## not on every host.
serve: install
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

## Debian's Chromium for the browser tests; skipped (tests say how) where apt-get can't run.
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "Could not install chromium; browser tests will skip."; \
	  else echo "Chromium missing and apt-get not usable; browser tests will skip."; fi; \
	fi

## axe-core for the accessibility tests (and Lighthouse for `make bench-lighthouse`), from the
## npm registry at the versions package-lock.json pins
node_modules/axe-core/axe.min.js: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund --silent; \
	else echo "npm missing: the accessibility tests will skip (install nodejs and npm)"; fi

axe: node_modules/axe-core/axe.min.js

## Designsystemet's CSS, copied from the npm package package.json pins into our static files
## (committed, so `make run` needs no npm). Run after changing its version in package.json.
DS_CSS := node_modules/@digdir/designsystemet-css
DS_STATIC := clinic_finder/static/vendor/designsystemet
## Only the components COMPONENTS names (and the base): the rest would cost a phone's CPU
## before the first paint. Add a component's name there before using it.
designsystemet: $(BIN)/activate
	npm ci --no-audit --no-fund --silent
	$(BIN)/python scripts/designsystemet_subset.py $(DS_CSS)/dist/src/index.css \
	  $(DS_STATIC)/designsystemet.css $$(cat $(DS_STATIC)/COMPONENTS)
	cp $(DS_CSS)/dist/theme/designsystemet.css $(DS_STATIC)/theme.css
	cp $(DS_CSS)/LICENSE $(DS_STATIC)/LICENSE
	node -p "require('./$(DS_CSS)/package.json').version" > $(DS_STATIC)/VERSION

## The favicon set and the web app manifest, rendered from clinic_finder/static/icons/icon.svg
## and Designsystemet's theme by headless Chromium (committed, so `make run` needs neither).
## Run after changing the SVG or the theme.
icons: install-test browser
	$(BIN)/python scripts/make_icons.py

## Tests run on one pytest-xdist worker per CPU, each with databases of its own (SQLite
## files; on PostgreSQL TEST_DATABASE_URL's name plus the worker id, e.g. test_gw0).
## PYTEST_WORKERS= runs them in one process.
PYTEST_WORKERS ?= -n auto

## Run every test (SQLite always; PostgreSQL too when TEST_DATABASE_URL is set)
test: install-test browser axe
	$(BIN)/ruff check clinic_finder tests scripts bench wsgi.py gunicorn.conf.py
	$(MAKE) --no-print-directory security
	$(BIN)/pytest $(PYTEST_WORKERS)

## Security checks: bandit on the package (medium and high findings), then pip-audit on the
## exact versions in $(LOCK). Only the audit goes online (PyPI's JSON API). A vulnerable
## version fails the build; a package no service can be asked about is named and warned
## about loudly (add --require-service to fail on them). See docs/security.md.
PIP_AUDIT_FLAGS ?= --vulnerability-service pypi
security: install-test
	$(BIN)/bandit -q -r clinic_finder -c .bandit.yaml -ll
	$(BIN)/python scripts/audit_dependencies.py $(PIP_AUDIT_FLAGS)

## Everyday: the tests without the browser and the slow ones, stop at the first failure
test-fast: install-test
	$(BIN)/pytest $(PYTEST_WORKERS) -x -q -m "not browser and not slow"

lint: install-test
	$(BIN)/ruff check clinic_finder tests scripts bench wsgi.py gunicorn.conf.py
	$(BIN)/ruff format --check clinic_finder tests scripts bench wsgi.py gunicorn.conf.py

format: install-test
	$(BIN)/ruff format clinic_finder tests scripts bench wsgi.py gunicorn.conf.py
	$(BIN)/ruff check --fix clinic_finder tests scripts bench wsgi.py gunicorn.conf.py

## wrk, the load generator of the server benchmark, from Debian's packages when apt-get can
wrk:
	@if ! command -v wrk >/dev/null 2>&1; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null) \
	      || echo "Could not install wrk; the server benchmark will say so."; \
	  else echo "wrk missing and apt-get not usable: install wrk for the server benchmark."; fi; \
	fi

## PostGIS, the server benchmark's yardstick for the search on PostgreSQL, from Debian's
## packages (postgresql-N-postgis-3 for each local PostgreSQL N) when apt-get can
postgis:
	@for dir in /usr/lib/postgresql/*/; do \
	  [ -d "$$dir" ] || continue; major=$$(basename "$$dir"); \
	  [ -e /usr/share/postgresql/$$major/extension/postgis.control ] && continue; \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-$$major-postgis-3 >/dev/null) \
	      || echo "Could not install PostGIS; the server benchmark will say so."; \
	  else echo "PostGIS missing and apt-get not usable: install postgresql-$$major-postgis-3 for the server benchmark."; fi; \
	done

$(VENV)/.bench-installed: $(BIN)/activate
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[bench]'
	touch $@

## Benchmarks (bench/README.md): the server under wrk at 100,000 clinics, on SQLite and, when
## the local PostgreSQL answers, on PostgreSQL too (database $(BENCH_POSTGRES_URL), wiped);
## then importing 10,000 rows; then the page weight; then Lighthouse. Run it on an idle
## machine: it takes about 11 minutes.
BENCH_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/bench_server
bench: install wrk postgis $(VENV)/.bench-installed install-test browser axe
	$(BIN)/python bench/server_bench.py $$($(BIN)/python bench/benchdb.py --reachable $(BENCH_POSTGRES_URL) && echo --postgres-url $(BENCH_POSTGRES_URL))
	$(BIN)/python bench/import_bench.py
	$(BIN)/python bench/page_weight.py
	$(BIN)/python bench/lighthouse.py

## What a phone downloads and when it shows the first result: the results, clinic and
## contact pages in Chromium at 360×800, 4× CPU slowdown, Slow 4G, on the demo database,
## against the targets (results page ≤ 120 KB, first result painted ≤ 1.0 s); about a minute
bench-page-weight: install-test browser
	$(BIN)/python bench/page_weight.py

## Lighthouse (npm, pinned in package.json; mobile defaults) in Debian's Chromium on the
## finder, a results page, a complaint's results, a clinic page and the contact page, on the
## demo database: the medians of 3 runs of the four scores and LCP against the targets, and
## what failed; about four minutes
bench-lighthouse: install-test browser axe
	$(BIN)/python bench/lighthouse.py

## The search alone, one query at a time, against a full scan with geodesic distances
bench-search: install
	$(BIN)/python bench/search_bench.py

## The staff import as production runs it: a 39,999-row, 4.9 MB file uploaded through the
## form into 80,000 clinics, gunicorn in production mode with its default timeout and the
## job worker beside it, on the local PostgreSQL ($(BENCH_IMPORT_WEB_URL), wiped) and
## Redis ($(BENCH_REDIS_URL)); about 3 minutes
BENCH_IMPORT_WEB_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/bench_import_web
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/14
bench-import-web: install
	$(BIN)/python bench/import_web_bench.py --database-url $(BENCH_IMPORT_WEB_URL) --redis-url $(BENCH_REDIS_URL)

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache *.egg-info node_modules
