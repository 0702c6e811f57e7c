# Set-up and everyday targets. `make run` and `make test` work on a fresh machine: they create the
# virtualenv (.venv) and the pinned Go tools (.tools) first.

PYTHON ?= python3
VENV := .venv
TOOLS := $(CURDIR)/.tools/bin
KUSTOMIZE_VERSION := v5.8.1
CONFTEST_VERSION := v0.69.0
KFGEN := $(VENV)/bin/kfgen
ENV ?= local
export KFGEN_KUSTOMIZE := $(TOOLS)/kustomize
export KFGEN_CONFTEST := $(TOOLS)/conftest

.PHONY: run test bench tools lint render vendor build check clean

run: $(KFGEN) tools
	$(KFGEN) validate
	$(KFGEN) vendor
	$(KFGEN) render
	$(KFGEN) build --env $(ENV) --out build/$(ENV)

test: $(KFGEN) tools
	$(VENV)/bin/ruff check generator tests bench
	$(VENV)/bin/pytest -q

# Medians and ratios against `kustomize build example` of kubeflow/manifests, into bench/results.json.
bench: $(KFGEN) tools
	$(VENV)/bin/python bench/run.py

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

$(KFGEN): $(VENV)/.installed

tools: $(TOOLS)/kustomize $(TOOLS)/conftest $(TOOLS)/yaml2json

$(TOOLS)/kustomize:
	GOBIN=$(TOOLS) GOFLAGS=-mod=mod go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

# Converts kustomize output to JSON lines, many times faster than parsing YAML in Python.
$(TOOLS)/yaml2json: tools/yaml2json/main.go tools/yaml2json/go.mod
	cd tools/yaml2json && GOFLAGS=-mod=mod go build -o $(TOOLS)/yaml2json .

$(TOOLS)/conftest:
	GOBIN=$(TOOLS) GOFLAGS=-mod=mod go install github.com/open-policy-agent/conftest@$(CONFTEST_VERSION)

lint: $(KFGEN)
	$(VENV)/bin/ruff check generator tests bench

render vendor check: $(KFGEN)
	$(KFGEN) $@

build: $(KFGEN) tools
	$(KFGEN) build --env $(ENV) --out build/$(ENV)

clean:
	rm -rf $(VENV) .tools vendor build .kfgen
