# Every command the README shows is a target here; CI runs `make test` (see .ci/run).
SHELL := /bin/bash
PORT ?= 8000
VENV := .venv
RASA_VENV := .venv-rasa
PY := $(VENV)/bin/python
RASA := $(RASA_VENV)/bin/rasa
RASA_VERSION := 3.6.21

# `make run`'s process runner. honcho reads no .env itself (it would override the
# operator's exported settings, empty values included): each process reads .env through
# bot/config.py, where the real environment wins. APP_PORT tells the other processes
# where the web app listens (honcho gives each process a PORT of its own). Every process
# counts its metrics into one folder (bot/metrics.py); an exported one wins.
HONCHO := APP_PORT=$(PORT) PORT=$(PORT) PROMETHEUS_MULTIPROC_DIR=$${PROMETHEUS_MULTIPROC_DIR:-$(CURDIR)/instance/metrics} $(VENV)/bin/honcho start --env /dev/null

.PHONY: run-scaled eval-nlu help install env start test-fast browser-deps kannel-deps chat-kannel model db demo run chat chat-whatsapp test validate bench clean

help:
	@echo "make run            set up everything and start the app, Rasa and the action server"
	@echo "make run-scaled     the production shape here: PostgreSQL, Redis, app x2, Rasa x2, dispatchers x2"
	@echo "make chat           chat with the running app as an SMS user (make chat-whatsapp for WhatsApp,"
	@echo "                    make chat-kannel for SMS arriving through Kannel)"
	@echo "make test           set up what the tests need and run the whole suite"
	@echo "make test-fast      everything but the end-to-end, browser, Kannel and NLU tests (parallel)"
	@echo "make bench          run the benchmark scripts"
	@echo "make eval-nlu       measure the NLU on the held-out set and compare pipelines"

$(VENV)/.stamp: pyproject.toml requirements.lock
	@if [ ! -x $(PY) ]; then py=$$(scripts/find-python310.sh) && $$py -m venv $(VENV); fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e '.[dev]'
	@touch $@

# Rasa's environment is large: rebuilt only when its lock file changes.
$(RASA_VENV)/.stamp: requirements-rasa.lock
	@if [ ! -x $(RASA_VENV)/bin/python ]; then py=$$(scripts/find-python310.sh) && $$py -m venv $(RASA_VENV); fi
	$(RASA_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(RASA_VENV)/bin/python -m pip install --quiet -c requirements-rasa.lock 'setuptools<71' rasa==$(RASA_VERSION)
	@touch $@

install: $(VENV)/.stamp $(RASA_VENV)/.stamp

# Writes .env with fresh secrets, or adds a secret an older .env lacks; never changes the rest.
env: | $(VENV)/.stamp
	@$(PY) scripts/init_env.py

model: install
	$(PY) scripts/rasa_model.py

db: install env
	$(VENV)/bin/bansos init-db

demo: db
	$(VENV)/bin/bansos seed-demo
	$(VENV)/bin/bansos demo-personas

validate: install
	$(RASA) data validate --data nlu --domain domain.yml --config config.yml --fail-on-warnings

run: install env demo model
	@echo
	@echo "Starting the app on http://127.0.0.1:$(PORT), Rasa on :5005, actions on :5055."
	@echo "In another terminal: 'make chat' (SMS) or 'make chat-whatsapp'. Ctrl-C stops everything."
	@echo
	$(HONCHO)

# The production shape on this machine (Procfile.scaled): app ×2, Rasa ×2 on one model,
# answer workers, dispatchers ×2 and the scheduler, on the local PostgreSQL and Redis.
run-scaled: install env model
	$(PY) scripts/run_scaled.py

# Some of the Procfile's processes, started exactly as `make run` starts them: make start PROCS="web scheduler"
start: install
	$(HONCHO) $(PROCS)

chat: install env
	$(PY) scripts/chat.py --sms

chat-whatsapp: install env
	$(PY) scripts/chat.py --whatsapp

chat-kannel: install env
	$(PY) scripts/chat.py --kannel

# The quick part in parallel (it mostly waits on sockets and subprocesses, so four
# workers on two cores), then the slow part (real Rasa, Kannel, Chromium) in one process,
# which trains or loads the model once.
PYTEST_FAST := -n 4 -m "not slow"

test: install validate browser-deps kannel-deps
	$(PY) -m pytest $(PYTEST_FAST) --durations=10
	$(PY) -m pytest -m slow --durations=10

# Everything but the slow part: the developer's loop (under 3 minutes here).
test-fast: install
	$(PY) -m pytest $(PYTEST_FAST)

eval-nlu: install
	$(RASA_VENV)/bin/python scripts/eval_nlu.py

bench: install
	$(PY) scripts/bench_import.py
	$(PY) scripts/bench_notices.py
	$(PY) scripts/bench_load.py
	$(PY) scripts/bench_turn.py
	$(PY) scripts/bench_app.py

# The browser test drives Debian's Chromium and chromedriver through Selenium (no downloads).
# Installing them needs root; without them that test is skipped and says why.
browser-deps:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y --no-install-recommends chromium chromium-driver \
	  || { apt-get update && apt-get install -y --no-install-recommends chromium chromium-driver; } \
	  || echo "browser-deps: could not install Chromium; the browser test will be skipped"; \
	else echo "browser-deps: Chromium missing and not root; the browser test will be skipped"; fi

# The Kannel gateway test runs Debian's bearerbox and smsbox, with fakesmsc (kannel-extras)
# as the phone network. Installing them needs root; without them that test is skipped and says why.
kannel-deps:
	@if [ -x /usr/sbin/bearerbox ] && [ -x /usr/sbin/smsbox ] && [ -x /usr/lib/kannel/test/fakesmsc ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { apt-get install -y --no-install-recommends kannel kannel-extras \
	    || { apt-get update && apt-get install -y --no-install-recommends kannel kannel-extras; }; } \
	  && { [ ! -x /etc/init.d/kannel ] || /etc/init.d/kannel stop >/dev/null 2>&1 || true; } \
	  || echo "kannel-deps: could not install Kannel; the Kannel gateway test will be skipped"; \
	else echo "kannel-deps: Kannel missing and not root; the Kannel gateway test will be skipped"; fi

clean:
	rm -rf $(VENV) $(RASA_VENV) instance reports .pytest_cache
