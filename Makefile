# kuar's single entry point. On a fresh machine (Python >= 3.11 and Go >= 1.26 present):
#   make demo   installs everything and runs the main job on the local control plane
#   make test   installs everything and runs the checks and the tests
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install controlplane lint typecheck unit check-generated bench clean \
        image-tools images dist docs chromium node-tools bench-tools

$(STAMP): pyproject.toml loadgen/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ./loadgen -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl from the Go
# module proxy once (minutes, cold), then reuses the cache (~/.cache/kuar/controlplane/...).
controlplane: install
	$(BIN)/kuar controlplane install

# Debian tools that build images (mmdebstrap, umoci) and run them in the tests (podman, runc);
# installed with apt-get when missing (needs root, as on these machines).
IMAGE_TOOLS := mmdebstrap umoci podman runc
image-tools:
	@missing=""; for tool in $(IMAGE_TOOLS); do \
	  PATH="$$PATH:/usr/sbin:/sbin" command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# Debian's chromium for the browser checks of the docs and the HTML report (tests/docs), driven
# by Playwright with executable_path (Playwright's own browser download is not used).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian package: chromium"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# the documentation site into build/docs (open build/docs/index.html); warnings are errors:
# broken links, missing references and undocumented public names fail it
docs: install
	$(BIN)/sphinx-build -E -W -n --keep-going -q -b html docs build/docs
	@echo "built build/docs/index.html"

# The real node (kuar up/demo --node real, tests/e2e/test_realnode.py): Debian's containerd 1.6,
# runc, CNI plugins, iptables, conntrack and socat (apt-get, when missing), then kubelet,
# kube-proxy, crictl, CoreDNS and the pause image built from the Go module proxy once
# (~3 + ~5 min cold on 2 cores; cached in ~/.cache/kuar/node).
NODE_PACKAGES := containerd runc containernetworking-plugins iptables conntrack socat
node-tools: controlplane
	@missing=""; for pkg in $(NODE_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	$(BIN)/kuar node install

# The benchmarks' contenders (bench/; their smoke tests run in `make test`): kopf, locust,
# lightkube and kr8s (the `bench` extra) and the Debian packages nginx-light, wrk and hey
# (apt-get when missing; needs root, as on these machines). The Go programs build themselves
# on first use into ~/.cache/kuar/bench*.
BENCH_STAMP := $(VENV)/.bench-installed
BENCH_TOOLS := nginx wrk hey
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install -q -e '.[bench]'
	touch $(BENCH_STAMP)

bench-tools: $(BENCH_STAMP)
	@missing=""; for tool in $(BENCH_TOOLS); do \
	  PATH="$$PATH:/usr/sbin:/sbin" command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; \
	done; \
	if [ -n "$$missing" ]; then \
	  pkgs=$$(echo "$$missing" | sed 's/nginx/nginx-light/'); \
	  echo "installing Debian packages:$$pkgs"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkgs; \
	fi

# sdists and wheels of kuar and kuar-loadgen (the standard build frontend) into dist/
dist: install
	rm -f dist/kuar-*.whl dist/kuar_loadgen-*.whl dist/kuar-*.tar.gz dist/kuar_loadgen-*.tar.gz
	$(BIN)/python -m build --outdir dist .
	$(BIN)/python -m build --outdir dist loadgen

# the operator and load-worker OCI images (build/images/*.oci.tar, digests in images.json)
images: install image-tools
	$(BIN)/kuar image build --output-dir build/images

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

test: controlplane image-tools node-tools bench-tools chromium lint
	$(BIN)/pytest

unit: install
	$(BIN)/pytest tests/unit

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
