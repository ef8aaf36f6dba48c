# ebpfflow — build, generate, test and run the otelcol-ebpfflow collector.
#
#   make run     install what is missing, build, run on this node (examples/local.yaml)
#   make test    unit + privileged tests, then the end-to-end test with the built binary
#   make bench   in-kernel and user-space costs and collector RSS, as ratios to their targets
#   make bench-load  the side-by-side load alone: nginx + wrk without/with the collector
#   make nab     anomaly detector scored on NAB data, held out by category: make nab NAB_DATA=<nab>/data
#
# Builds are always CGO_ENABLED=0 (static binary, and the whole graph shares one
# build cache) and always -trimpath (set through GOFLAGS so `go test`/`go vet`
# compile dependencies with the same flags as `go build` and reuse its cache;
# a flag mismatch would compile the ~700-package collector graph twice).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

# Pinned toolchain for BPF objects; the generated .o files are committed, so
# only `make generate` needs them.
CLANG ?= clang-19
STRIP ?= llvm-strip-19
OCB_VERSION := v0.162.0

GO      ?= go
BIN     := distribution/_build/otelcol-ebpfflow
OCB     := .bin/builder
CONFIG  ?= examples/local.yaml
SUDO    := $(if $(filter 0,$(shell id -u)),,sudo)

export CGO_ENABLED := 0
# Keep what `go env GOFLAGS` already has (an environment GOFLAGS replaces it).
export GOFLAGS := $(strip $(filter-out -trimpath,$(shell $(GO) env GOFLAGS)) -trimpath)
# bpf2go reads these when a bpf/gen.go line does not pass -cc / -strip itself.
export BPF2GO_CC := $(CLANG)
export BPF2GO_STRIP := $(STRIP)

# Files the generators own: check-generated refuses them untracked.
GENERATED_RE := (_bpfe[lb]\.(go|o)$$|/internal/metadata/|/internal/metadatatest/|/generated_[a-z_]+\.go$$|/documentation\.md$$|^distribution/otelcol-ebpfflow/)

.PHONY: deps generate check-generated build vet test unit e2e bench bench-load nab nab-synth run clean help manifests

help:
	@grep -E '^#   make' Makefile | sed 's/^#   //'

## deps: install missing system packages, mount tracefs/bpffs (idempotent, fast when present)
deps:
	@$(SUDO) env CLANG=$(CLANG) STRIP=$(STRIP) bash .ci/deps.sh

$(OCB):
	GOBIN=$(CURDIR)/.bin $(GO) install go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION)

## generate: bpf2go objects, mdatagen output, ocb distribution main
# clang orders some BTF types differently depending on the absolute path of the
# sources (same code, different bytes), so the generators run on a copy of the
# tree at one fixed path and the generated files are copied back: every
# checkout (CI clones elsewhere) then produces byte-identical objects.
GEN_DIR := /tmp/ebpfflow-generate
generate: $(OCB)
	rm -rf $(GEN_DIR) && mkdir -p $(GEN_DIR)
	tar --exclude=./.git --exclude=./.bin --exclude=./distribution/_build --exclude=./tests/out -cf - . | tar -C $(GEN_DIR) -xf -
	cd $(GEN_DIR) && $(GO) generate ./...
	cd $(GEN_DIR) && find . -type f -printf '%P\n' | grep -E '$(GENERATED_RE)' | tar -cf - -T - | tar -C $(CURDIR) -xf -
	rm -rf $(GEN_DIR)
	$(OCB) --config=builder-config.yaml --skip-get-modules --skip-compilation

## check-generated: regenerate and fail if the committed generated code differs
check-generated: generate
	@untracked="$$(git ls-files --others --exclude-standard | grep -E '$(GENERATED_RE)' || true)"; \
	if ! git diff --exit-code --stat; then \
		echo "check-generated: generated code differs from the commit; run 'make generate' and commit"; exit 1; \
	fi; \
	if [ -n "$$untracked" ]; then \
		echo "check-generated: generated files not committed:"; echo "$$untracked"; exit 1; \
	fi; \
	echo "check-generated: generated code is up to date"

## build: the collector binary (static, stripped)
build:
	$(GO) build -ldflags "-s -w" -o $(BIN) ./distribution/otelcol-ebpfflow
	@ls -l $(BIN)

vet:
	$(GO) vet ./...
	$(GO) vet -tags e2e ./tests/...

## test: unit + privileged tests (EBPFFLOW_REQUIRE_PRIVILEGED=1 turns skips into failures), then e2e;
## each run ends with the list of tests that skipped (tests/testreport)
test: unit e2e

unit:
	$(GO) build -o .bin/testreport ./tests/testreport
	$(SUDO) env "PATH=$$PATH" "GOFLAGS=$(GOFLAGS)" CGO_ENABLED=0 \
		EBPFFLOW_REQUIRE_PRIVILEGED=$${EBPFFLOW_REQUIRE_PRIVILEGED:-} \
		$(GO) test -count=1 -json ./... | .bin/testreport

## e2e: build, then run tests/e2e against the built binary (netns "pods", real traffic)
E2E_TEST = $(SUDO) env "PATH=$$PATH" "GOFLAGS=$(GOFLAGS)" CGO_ENABLED=0 \
	EBPFFLOW_REQUIRE_PRIVILEGED=$${EBPFFLOW_REQUIRE_PRIVILEGED:-} \
	EBPFFLOW_COLLECTOR=$(CURDIR)/$(BIN) \
	$(GO) test -tags e2e -count=1 -timeout 20m -json ./tests/e2e
# The one test run a second time, and only when it is the only failure
# (reported as FLAKY); any other failure fails at once.
E2E_RERUN_ONCE := TestAnomalyAlerts

e2e: build
	tests/backends/build.sh
	$(GO) build -o .bin/testreport ./tests/testreport
	$(E2E_TEST) | tee .bin/e2e.json | .bin/testreport -v || { \
		failed=$$(grep -o '"Action":"fail","Package":"[^"]*","Test":"[^"/]*"' .bin/e2e.json | sed 's/.*"Test":"//; s/"$$//' | sort -u | tr '\n' ' '); \
		[ "$$failed" = "$(E2E_RERUN_ONCE) " ] || exit 1; \
		echo "e2e: FLAKY: $(E2E_RERUN_ONCE) failed alone; it runs once more (a live detection test on a 2-core machine: see the Limits of processor/anomalydetectionprocessor/README.md)"; \
		$(E2E_TEST) -run '^$(E2E_RERUN_ONCE)$$' | .bin/testreport -v; }

## bench: in-kernel ns/packet, user-space events/s/core, collector RSS at 10k flows, and the
## side-by-side load; fails when any benchmark fails. LOAD_ARGS: flags of BenchmarkLoad
## (e.g. LOAD_ARGS="-load.runs=3 -load.flows=10000")
bench: build
	$(SUDO) env "PATH=$$PATH" "GOFLAGS=$(GOFLAGS)" CGO_ENABLED=0 \
		$(GO) run ./tests/bench -collector $(CURDIR)/$(BIN) -load-args "$(LOAD_ARGS)"

## bench-load: nginx in one pod, wrk -t1 in another, 7 alternating runs without/with the built
## collector: throughput ratio, ns per packet of every program, CPU per 1k requests, RSS; at
## a few hot connections, 10k flows and 100 -> 100k flows. At the hot load and 10k flows the
## rounds add an empty cgroup_skb pair (the run-time statistics' own cost, printed and netted
## out beside the raw figures) and the collector with statistics off (machine CPU it adds)
bench-load: build
	$(SUDO) env "PATH=$$PATH" "GOFLAGS=$(GOFLAGS)" CGO_ENABLED=0 \
		$(GO) run ./tests/bench -collector $(CURDIR)/$(BIN) -skip-go-bench -rss=false -load-args "$(LOAD_ARGS)"

## nab: run the anomaly detector core over a NAB-style corpus exactly as the processor
## runs it (same code, default config) and print NAB scores with every category and each
## half of the files held out from the choice of the threshold, and in-sample.
## NAB_DATA (required): the corpus' data/ directory; NAB_LABELS: its windows file
## (default NAB_DATA/../labels/combined_windows.json); NAB_OUT: also write result CSVs there;
## NAB_FLAGS: more runner flags (-v per file, -grid, -synth-seed).
## nab-synth: the same, then both synthetic families of server metrics (seed 3, never tuned on)
## scored at the thresholds chosen on NAB.
nab:
	@test -n "$(NAB_DATA)" || { echo "make nab: set NAB_DATA to the data/ directory of a NAB-style corpus" >&2; exit 2; }
	$(GO) run ./internal/anomaly/cmd/nab -data $(NAB_DATA) $(if $(NAB_LABELS),-labels $(NAB_LABELS)) $(if $(NAB_OUT),-out $(NAB_OUT)) $(NAB_FLAGS)

nab-synth:
	$(MAKE) nab NAB_FLAGS="-synth -synthb -synth-seed 3 $(NAB_FLAGS)"

## run: deps + build + run the collector on this node with $(CONFIG)
run: deps build
	@echo "running $(BIN) --config=$(CONFIG) (Ctrl-C to stop)"
	$(SUDO) $(CURDIR)/$(BIN) --feature-gates=+extension.healthcheck.useComponentStatus --config=$(CURDIR)/$(CONFIG)

clean:
	rm -rf distribution/_build tests/out

## test-servers: build once (cached by version in $EBPFFLOW_CACHE, default /var/cache/ebpfflow) the
## Kubernetes control plane, helm and the telemetry backends the tests run against; SMOKE=1 also
## smoke-tests each (tests/kube/README.md, tests/backends/README.md)
.PHONY: test-servers
test-servers:
	tests/kube/build.sh
	tests/backends/build.sh
	if [ "$${SMOKE:-0}" = 1 ]; then tests/kube/smoke.sh && tests/backends/smoke.sh; fi

## manifests: render distribution/k8s/ebpfflow.yaml from the Helm chart with its defaults
## (tests/manifests fails when they differ); helm comes from tests/kube/build.sh
HELM = $(shell . tests/kube/versions.sh && echo $$HELM_BIN_DIR/helm)
manifests:
	@test -x $(HELM) || { echo "make manifests: $(HELM) is missing: run tests/kube/build.sh" >&2; exit 1; }
	{ echo "# Generated by \`make manifests\` from distribution/helm/ebpfflow with its default values: edit the chart, not this file."; \
	  $(HELM) template ebpfflow distribution/helm/ebpfflow --namespace ebpfflow; } > distribution/k8s/ebpfflow.yaml

## bench-http: HTTP spans under load: nginx in one pod, wrk -t1 -c4 in another, 7 rotating runs
## without the collector, with it and http off, with http on; throughput ratios, span
## completeness, in-kernel + collector CPU per 1k requests, RSS (HTTP_ARGS: -httpload.runs=3 …)
.PHONY: bench-http
bench-http: build
	$(SUDO) env "PATH=$$PATH" "GOFLAGS=$(GOFLAGS)" CGO_ENABLED=0 EBPFFLOW_COLLECTOR=$(CURDIR)/$(BIN) \
		$(GO) test -tags e2e -count=1 -run '^$$' -bench HTTPLoad -benchtime 1x -timeout 30m ./tests/e2e -args $(HTTP_ARGS)
