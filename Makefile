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
export KFGEN_KUSTOMIZE_WORKER := $(TOOLS)/kustomize-worker
export KFGEN_CONFTEST := $(TOOLS)/conftest
export KFGEN_YAML2JSON := $(TOOLS)/yaml2json
export KFGEN_KUBE_APISERVER := $(TOOLS)/kube-apiserver
export KFGEN_ETCD := $(TOOLS)/etcd
export KFGEN_KUBE_CONTROLLER_MANAGER := $(TOOLS)/kube-controller-manager
export KFGEN_KUBE_SCHEDULER := $(TOOLS)/kube-scheduler
export KFGEN_KUBECTL := $(TOOLS)/kubectl
export KFGEN_KWOK := $(TOOLS)/kwok
export KFGEN_ARGOCD := $(TOOLS)/argocd
export KFGEN_SOURCE_CONTROLLER := $(TOOLS)/source-controller
export KFGEN_KUSTOMIZE_CONTROLLER := $(TOOLS)/kustomize-controller
export KFGEN_CERT_MANAGER_CONTROLLER := $(TOOLS)/cert-manager-controller

.PHONY: run test bench tools lint typecheck render vendor build check clean docs

run: $(KFGEN) tools
	$(KFGEN) validate
	$(KFGEN) vendor
	$(KFGEN) render
	$(KFGEN) build --env $(ENV) --out build/$(ENV)

# The end-to-end suite (tests/e2e) runs beside the others, in a process of its own: its clusters mostly
# wait on their controllers, so Argo CD's and Flux's scenarios and the rest of the suite overlap on two
# cores. Its report follows the others'; `make test` fails if either failed.
test: $(KFGEN) tools controlplane e2e-tools
	$(VENV)/bin/ruff check generator tests bench
	$(VENV)/bin/mypy
	@log=$$(mktemp); \
	$(VENV)/bin/pytest -q -m e2e > $$log 2>&1 & e2e=$$!; \
	unit=0; $(VENV)/bin/pytest -q -m "not e2e" || unit=$$?; \
	end=0; wait $$e2e || end=$$?; \
	echo "--- the end-to-end suite (tests/e2e):"; cat $$log; rm -f $$log; \
	[ $$unit -eq 0 ] && [ $$end -eq 0 ]

# The inner loop: ruff, then the tests that need neither a cluster nor the test control plane and take
# seconds, not minutes (the markers are in pyproject.toml). `make test` still runs everything.
.PHONY: test-fast
test-fast: $(KFGEN) tools
	$(VENV)/bin/ruff check generator tests bench
	$(VENV)/bin/pytest -q -m "not e2e and not controlplane and not slow"

# Medians and ratios against `kustomize build example` of kubeflow/manifests, into bench/results.json; then
# publish-to-converged with the real GitOps controllers against upstream's own install (bench/converge.py).
bench: $(KFGEN) tools controlplane e2e-tools
	$(VENV)/bin/python bench/run.py
	$(VENV)/bin/python bench/converge.py

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

$(KFGEN): $(VENV)/.installed

tools: $(TOOLS)/kustomize $(TOOLS)/kustomize-worker $(TOOLS)/conftest $(TOOLS)/yaml2json

$(TOOLS)/kustomize:
	GOBIN=$(TOOLS) GOFLAGS=-mod=mod go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

# kustomize's own build command, of the same release as the binary above, run on many directories
# in one process (see generator/kfgen/kustomize.py); its go.mod pins that release.
$(TOOLS)/kustomize-worker: tools/kustomize-worker/main.go tools/kustomize-worker/go.mod
	cd tools/kustomize-worker && GOFLAGS=-mod=mod go build -o $(TOOLS)/kustomize-worker .

# Converts kustomize output to JSON lines, many times faster than parsing YAML in Python.
$(TOOLS)/yaml2json: tools/yaml2json/main.go tools/yaml2json/go.mod
	cd tools/yaml2json && GOFLAGS=-mod=mod go build -o $(TOOLS)/yaml2json .

$(TOOLS)/conftest:
	GOBIN=$(TOOLS) GOFLAGS=-mod=mod go install github.com/open-policy-agent/conftest@$(CONFTEST_VERSION)

# The real control plane of the tests (tests/controlplane.py): kube-apiserver of the Kubernetes release
# in tools/apiserver/go.mod and the etcd it is tested with, built once from the Go module proxy
# (about 8 minutes on 2 cores with a cold Go cache). The version ldflags make the API server report
# its real version instead of v0.0.0 (the module proxy does not say which commit it is).
.PHONY: controlplane
controlplane: $(TOOLS)/kube-apiserver $(TOOLS)/etcd

KUBE_VERSION = $(shell awk '$$1 == "k8s.io/kubernetes" {print $$2}' tools/apiserver/go.mod)
KUBE_VERSION_LDFLAGS = $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
  -X $(p).gitVersion=$(KUBE_VERSION) -X $(p).gitMajor=1 -X $(p).gitMinor=$(word 2,$(subst ., ,$(KUBE_VERSION))) \
  -X $(p).gitCommit= -X $(p).buildDate=$(shell date -u +%Y-%m-%dT%H:%M:%SZ))

$(TOOLS)/kube-apiserver: tools/apiserver/go.mod tools/apiserver/go.sum
	cd tools/apiserver && GOFLAGS=-mod=mod go build -trimpath -ldflags='-s -w $(strip $(KUBE_VERSION_LDFLAGS))' \
	  -o $@ k8s.io/kubernetes/cmd/kube-apiserver

$(TOOLS)/etcd: tools/etcd/main.go tools/etcd/go.mod tools/etcd/go.sum
	cd tools/etcd && GOFLAGS=-mod=mod go build -trimpath -buildvcs=false -ldflags='-s -w' -o $@ .

# The test cluster of tests/e2e (tests/e2e/cluster.py): every binary the end-to-end suite runs.
.PHONY: e2e-tools
e2e-tools: controlplane $(TOOLS)/kube-controller-manager $(TOOLS)/kube-scheduler $(TOOLS)/kubectl $(TOOLS)/kwok git-installed
e2e-tools: $(TOOLS)/argocd $(TOOLS)/argocd-application-controller $(TOOLS)/argocd-repo-server redis-installed
e2e-tools: $(TOOLS)/source-controller $(TOOLS)/kustomize-controller $(TOOLS)/cert-manager-controller

# The rest of the cluster, from the same k8s.io/kubernetes module as kube-apiserver (its go.mod has
# their `tool` lines), with the same version ldflags; kubectl is built too so that its version is the
# server's. About 3.5 more minutes of CPU once kube-apiserver is built (kubectl 1 of them).
$(TOOLS)/kube-controller-manager $(TOOLS)/kube-scheduler $(TOOLS)/kubectl: $(TOOLS)/%: tools/apiserver/go.mod tools/apiserver/go.sum
	cd tools/apiserver && GOFLAGS=-mod=mod go build -trimpath -ldflags='-s -w $(strip $(KUBE_VERSION_LDFLAGS))' \
	  -o $@ k8s.io/kubernetes/cmd/$*

# KWOK plays the kubelet of fake nodes; its stages (what happens to a node, pod or claim) are in tests/e2e/kwok.
KWOK_VERSION := v0.8.0
$(TOOLS)/kwok:
	GOBIN=$(TOOLS) GOFLAGS=-mod=mod go install -trimpath -ldflags='-s -w' sigs.k8s.io/kwok/cmd/kwok@$(KWOK_VERSION)

# The e2e suite serves the repository with `git http-backend`.
.PHONY: git-installed
git-installed:
	@command -v git >/dev/null || (apt-get update && apt-get install -y git)

# Argo CD's application controller and repo server (tests/e2e/argocd.py): one binary of our own
# (tools/argocd) that picks the command by the name it runs as, as Argo CD's image does; only those
# commands are compiled. About 6 minutes of CPU with a warm Go cache of Kubernetes modules.
ARGOCD_VERSION = $(shell awk '$$1 == "github.com/argoproj/argo-cd/v3" {print $$2}' tools/argocd/go.mod)
$(TOOLS)/argocd: tools/argocd/main.go tools/argocd/go.mod tools/argocd/go.sum
	cd tools/argocd && GOFLAGS=-mod=mod go build -trimpath \
	  -ldflags='-s -w -X github.com/argoproj/argo-cd/v3/common.version=$(ARGOCD_VERSION:v%=%)' -o $@ .

$(TOOLS)/argocd-application-controller $(TOOLS)/argocd-repo-server: $(TOOLS)/argocd
	ln -sf argocd $@

# Argo CD's cache; the e2e suite runs Debian's redis-server on a loopback port.
.PHONY: redis-installed
redis-installed:
	@command -v redis-server >/dev/null || (apt-get update && apt-get install -y redis-server)

# Flux's source-controller and kustomize-controller (tests/e2e/flux.py), the releases whose CRDs are in the
# source cache, from the wrapper module tools/flux (its go.mod says why a wrapper). About 9 minutes of CPU
# with a cold Go cache.
$(TOOLS)/source-controller $(TOOLS)/kustomize-controller: $(TOOLS)/%: tools/flux/go.mod tools/flux/go.sum
	cd tools/flux && GOFLAGS=-mod=mod go build -trimpath -ldflags='-s -w' -o $@ github.com/fluxcd/$*

# cert-manager's controllers (tests/e2e/certmanager.py), of the release kubeflow/manifests 26.03 deploys:
# tools/cert-manager is a small main over its controller library (its main.go says why). The version
# ldflag makes its user agent and logs name the release instead of "canary".
CERT_MANAGER_VERSION = $(shell awk '$$1 == "github.com/cert-manager/cert-manager" {print $$2}' tools/cert-manager/go.mod)
$(TOOLS)/cert-manager-controller: tools/cert-manager/main.go tools/cert-manager/go.mod tools/cert-manager/go.sum
	cd tools/cert-manager && GOFLAGS=-mod=mod go build -trimpath \
	  -ldflags='-s -w -X github.com/cert-manager/cert-manager/pkg/util.AppVersion=$(CERT_MANAGER_VERSION)' -o $@ .

# docs/spec-reference.md, docs/catalog-reference.md and docs/cli-reference.md, from the schemas, the catalog and the
# CLI's parser (generator/kfgen/reference/); tests/test_reference.py fails when they are out of date.
docs: $(KFGEN)
	$(VENV)/bin/python -m kfgen.reference

lint: $(KFGEN)
	$(VENV)/bin/ruff check generator tests bench

# mypy --strict over generator/kfgen, as [tool.mypy] in pyproject.toml configures it.
typecheck: $(KFGEN)
	$(VENV)/bin/mypy

render vendor check: $(KFGEN)
	$(KFGEN) $@

build: $(KFGEN) tools
	$(KFGEN) build --env $(ENV) --out build/$(ENV)

clean:
	rm -rf $(VENV) .tools vendor build .kfgen
