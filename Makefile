# kuar's single entry point. On a fresh machine (Python >= 3.11 and Go >= 1.26 present):
#   make demo   installs everything and runs the main job on the local control plane
#   make test   installs everything and runs the checks and the tests
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install controlplane lint typecheck unit check-generated bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl from the Go
# module proxy once (minutes, cold), then reuses the cache (~/.cache/kuar/controlplane/...).
controlplane: install
	$(BIN)/kuar controlplane install

demo: controlplane
	$(BIN)/kuar demo

lint: install
	$(BIN)/ruff check
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/kuar generate crds kuar_loadtest.api --conversion-service kuar-system/kuar-webhook --output-dir deploy/crds --check
	$(BIN)/kuar generate rbac kuar_loadtest.rbac --output-dir deploy/rbac --check
	$(BIN)/kuar generate webhooks kuar_loadtest.webhooks --output-dir deploy/webhooks --check
	$(BIN)/kuar generate models --output-dir src/kuar/models --check

test: controlplane lint
	$(BIN)/pytest

unit: install
	$(BIN)/pytest tests/unit

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
