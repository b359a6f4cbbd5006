# The two commands: `make demo` (the main job) and `make test` (the whole suite).
# Both set up everything on a fresh machine: uv, the locked environment, the stack.

PYTHON   ?= python3
UV_VER   := 0.13.9
TOOLS    := .local/tools
UV       := $(TOOLS)/bin/uv
VENV_PY  := .venv/bin/python
STACK    := $(PYTHON) deploy/local/stack.py

.PHONY: demo test check setup up down status schemas chromium wizard

# The demo keeps its objects in a local directory: it needs no S3 server (whose
# first build from source takes many minutes); the tests start everything.
demo: setup
	$(STACK) up --only postgres,kafka,smtp
	$(VENV_PY) deploy/local/demo.py

test: setup up check chromium
	$(VENV_PY) -m pytest

# The browser tests drive Debian's Chromium (Playwright's own browser builds are
# not downloaded): installed here when missing.
chromium:
	@test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)

# The wizard for local use: the stack and the five services, left running, and a
# one-time sign-in link for a demo administrator (Ctrl-C stops the services).
wizard: setup
	$(STACK) up --only postgres,kafka,smtp
	$(VENV_PY) deploy/local/wizard.py

check: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy libs services tests deploy bench
	$(VENV_PY) -m rosterflow.contracts --check
	$(VENV_PY) -m services.ingest.openapi --check

setup: $(VENV_PY)

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VER)

$(VENV_PY): $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python python3.11
	touch $(VENV_PY)

up: setup
	$(STACK) up

down:
	$(STACK) down

status:
	$(STACK) status

schemas: setup
	$(VENV_PY) -m rosterflow.contracts
	$(VENV_PY) -m services.ingest.openapi
