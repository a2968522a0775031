# flywheel — the two commands of the README, and their parts.
#   make render   render the dev stack offline into build/dev and run the policy pack
#   make test     lint, types and the whole test suite (installs what the tests need)
#   make e2e      build the lab's real counterparts once (cached outside the clone), then run the program
#                 through the real Pulumi engine against a real kube-apiserver (tests/e2e)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK ?= dev
OUT ?= build/$(STACK)
STACK_FILE ?=
POLICY_CONFIG ?=
GITLAB_CI_LOCAL_VERSION := 4.73.0
TOOLS := .tools
SYSTEM_PACKAGES := nix-bin rsync shellcheck
export PATH := $(CURDIR)/$(TOOLS)/node_modules/.bin:$(PATH)

.PHONY: render test e2e lab lint types pytest bench system-tools clean

# GNU make reports every failed recipe as exit 2, so the render's own code (0 clean, 1 mandatory policy
# violation, 2 invalid configuration or --out, 3 internal error: a bug) is printed by name; `python -m tools.render`
# exits with it directly.
render: $(VENV)/.runtime
	@$(PY) -m tools.render --stack $(STACK) --out $(OUT) $(if $(STACK_FILE),--stack-file $(STACK_FILE)) \
	  $(if $(POLICY_CONFIG),--policy-config $(POLICY_CONFIG)) || { rc=$$?; \
	  case $$rc in 1) why="a mandatory policy violation";; 2) why="an invalid configuration";; \
	  3) why="an internal error, a bug to report";; *) why="an error";; esac; \
	  echo "make render: tools.render exited $$rc ($$why); make itself exits 2 for any failure" >&2; exit $$rc; }

test: system-tools $(VENV)/.dev lint types pytest

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

types: $(VENV)/.dev
	$(VENV)/bin/mypy components policies tools lab

pytest: $(VENV)/.dev
	$(PY) -m pytest -n 2 --dist loadgroup --ignore=tests/e2e

# The lab's counterparts: built from the Go module proxy into $${FLYWHEEL_LAB_CACHE:-~/.cache/flywheel-lab}.
lab: $(VENV)/.dev
	$(PY) -m lab.build

e2e: system-tools lab
	$(PY) -m pytest tests/e2e -x -v --timeout=1800

bench: system-tools $(VENV)/.dev
	$(PY) -m tools.bench --out build/bench

$(VENV)/bin/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; \
	  else echo "python3 -m venv failed: install python3-venv" >&2; exit 1; fi; \
	  rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $(VENV)/.runtime $@

# System tools the tests run for real. Installed only as root; otherwise the tests that need
# them skip (and fail under CI=true).
system-tools:
	@if [ "$$(id -u)" != 0 ]; then echo "system-tools: not root, not installing $(SYSTEM_PACKAGES) gitlab-ci-local"; exit 0; fi; \
	missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "system-tools: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi; \
	if [ ! -x $(TOOLS)/node_modules/.bin/gitlab-ci-local ]; then \
	  echo "system-tools: installing gitlab-ci-local@$(GITLAB_CI_LOCAL_VERSION) into $(TOOLS)/"; \
	  mkdir -p $(TOOLS) && npm install --prefix $(TOOLS) --no-audit --no-fund --silent gitlab-ci-local@$(GITLAB_CI_LOCAL_VERSION); fi

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
