# paysaga — the two commands a newcomer needs are `make run` and `make test`.
GO          ?= go
BIN         := $(CURDIR)/bin
TEMPORAL    := $(BIN)/temporal
WFCHECK     := $(BIN)/workflowcheck
TEMPORAL_CLI_VERSION  := v1.5.1
WORKFLOWCHECK_VERSION := v0.6.0
# make lint's linters: staticcheck (2026.2.x, built with our Go 1.26) and Redocly's CLI for api/openapi.yaml
STATICCHECK_VERSION   := v0.8.2
REDOCLY_VERSION       := 2.77.0
STATICCHECK := $(BIN)/staticcheck
TOOLS       := $(CURDIR)/.tools
REDOCLY     := $(TOOLS)/redocly-$(REDOCLY_VERSION)/node_modules/.bin/redocly
# The Temporal server version, declared once: the test cluster (make test-cluster), docker-compose.yml
# and the Helm values name this same version (deploy/ tests check they agree).
TEMPORAL_SERVER_VERSION := v1.29.1
TEMPORAL_SERVER   := $(BIN)/temporal-server
TEMPORAL_SQL_TOOL := $(BIN)/temporal-sql-tool
# The Helm chart's checks (make helm-check): helm, kubeconform, and the Kubernetes version whose
# OpenAPI document (module k8s.io/kubernetes) the manifests are validated against, offline.
HELM_VERSION        := v3.22.0
KUBECONFORM_VERSION := v0.8.0
KUBERNETES_VERSION  := v1.34.0
HELM        := $(BIN)/helm
KUBECONFORM := $(BIN)/kubeconform

# Addresses of the services the tests talk to; the CI machine runs them on their standard ports.
export PAYSAGA_TEST_MYSQL_DSN ?= root@tcp(127.0.0.1:3306)/test?parseTime=true
export PAYSAGA_TEST_REDIS_ADDR ?= 127.0.0.1:6379
export PAYSAGA_TEST_AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672/
export PAYSAGA_TEMPORAL_BIN ?= $(TEMPORAL)

TEST_FLAGS ?= -race -count=1 -timeout 30m

.PHONY: run test build lint fuzz bench chaos temporal clean

## run: build everything and start the all-in-one dev stack (Temporal + Web UI, API, worker, NH simulator)
run: build $(TEMPORAL)
	$(BIN)/paysaga dev

## test: every test, with the race detector (needs MariaDB, Redis, RabbitMQ reachable; see README), then the
##       Helm chart rendered and validated offline (helm-check: builds helm and kubeconform once, ~5 min cold)
test: $(TEMPORAL)
	$(GO) test $(TEST_FLAGS) ./...
	$(MAKE) helm-check

## build: the server and the operators' CLI into bin/
build:
	$(GO) build -o $(BIN)/paysaga ./cmd/paysaga
	@if [ -d cmd/payctl ]; then $(GO) build -o $(BIN)/payctl ./cmd/payctl; fi

## lint: go vet, gofmt, workflowcheck, staticcheck, the OpenAPI document (Redocly CLI, redocly.yaml) and no
##       tracked file over 5 MB (.ci/tracked-file-sizes); staticcheck into bin/, Redocly into .tools/ (npm), once
lint: $(WFCHECK) $(STATICCHECK) $(REDOCLY)
	.ci/tracked-file-sizes
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(WFCHECK) ./workflows/...
	$(STATICCHECK) ./...
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true $(REDOCLY) lint --config redocly.yaml api/openapi.yaml

## fuzz: a short run of each fuzz target
fuzz:
	@for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' nh/*_test.go | sed 's/func //'); do \
		echo "fuzz $$t"; $(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=15s ./nh || exit 1; done

## bench: the simulator's micro-benchmark, then payments at a fixed rate through the whole stack started
##        in-process (needs MariaDB, Redis, RabbitMQ like `make test`; about 2 minutes; make bench BENCH_FLAGS="-rate 20")
bench: $(TEMPORAL)
	$(GO) test -run='^$$' -bench=. -benchtime=2000x ./nhsim
	$(GO) run ./bench $(BENCH_FLAGS)

## chaos: the production shape under fire: separate migrate/api×2/worker×2/nhsim/Temporal (on a file) processes
##        on MariaDB, Redis, RabbitMQ; payments while the bank errs and workers, an API, the broker and Temporal
##        are killed; then payctl repairs and the money invariants are judged (600 payments, 6–8 min;
##        make chaos CHAOS_FLAGS="-payments 60" is the CI run; see docs/operations.md, "Chaos run")
chaos: $(TEMPORAL)
	$(GO) run ./chaos $(CHAOS_FLAGS)

## temporal: the Temporal CLI (dev server + Web UI), built once from the Go module proxy
temporal: $(TEMPORAL)
$(TEMPORAL):
	@echo "building the Temporal CLI $(TEMPORAL_CLI_VERSION) (about 6 minutes the first time)…"
	GOBIN=$(BIN) $(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION)

$(WFCHECK):
	GOBIN=$(BIN) $(GO) install go.temporal.io/sdk/contrib/tools/workflowcheck@$(WORKFLOWCHECK_VERSION)
$(STATICCHECK):
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
# Redocly's CLI from npm, into a folder git ignores (works offline once installed).
$(REDOCLY):
	npm install --prefix $(TOOLS)/redocly-$(REDOCLY_VERSION) --no-save --no-audit --no-fund --loglevel=error @redocly/cli@$(REDOCLY_VERSION)

## observability-check: the Prometheus alert rules (promtool check rules + their unit tests in
##      deploy/observability/alerts_test.yml) and the Grafana dashboard (valid JSON, known metrics,
##      every alert explained in docs/operations.md). promtool is built once into bin/ (about
##      8 minutes cold on 2 cores; Debian's `prometheus` package has one too: PROMTOOL=/usr/bin/promtool).
PROMTOOL_VERSION := v0.316.0
PROMTOOL         ?= $(BIN)/promtool
.PHONY: observability-check
observability-check: $(PROMTOOL)
	$(PROMTOOL) check rules deploy/observability/alerts.yml
	cd deploy/observability && $(PROMTOOL) test rules alerts_test.yml
	$(GO) test -count=1 ./deploy/observability/

$(BIN)/promtool:
	@echo "building promtool $(PROMTOOL_VERSION) (about 8 minutes the first time)…"
	GOBIN=$(BIN) $(GO) install github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)

clean:
	rm -rf $(BIN) var

## sim: the saga simulator — seeded fault schedules through the real workflows and activities on
##      Temporal's test environment, judged by the money-safety invariants (see docs/operations.md).
##      make sim SEED=42 SCHEDULES=1 reproduces one schedule; SIM_DB=mysql runs it on MariaDB.
SEED      ?=
SCHEDULES ?= 1000
SIM_DB    ?= sqlite
SIM_FLAGS ?=
.PHONY: sim
sim:
	$(GO) test -v -count=1 -timeout 60m -run '^TestSim$$' ./sim -args -sim.schedules=$(SCHEDULES) -sim.seed=$(SEED) -sim.db=$(SIM_DB) $(SIM_FLAGS)

## temporal-server: the Temporal server and its SQL schema tool, built once from the Go module proxy
##                  (about 9 minutes the first time)
.PHONY: temporal-server
temporal-server: $(TEMPORAL_SERVER) $(TEMPORAL_SQL_TOOL)
$(TEMPORAL_SERVER):
	@echo "building the Temporal server $(TEMPORAL_SERVER_VERSION) (about 9 minutes the first time)…"
	@mkdir -p $(BIN)/.temporal-server
	GOBIN=$(BIN)/.temporal-server $(GO) install go.temporal.io/server/cmd/server@$(TEMPORAL_SERVER_VERSION)
	mv $(BIN)/.temporal-server/server $@
$(TEMPORAL_SQL_TOOL):
	@mkdir -p $(BIN)/.temporal-server
	GOBIN=$(BIN)/.temporal-server $(GO) install go.temporal.io/server/cmd/tools/sql@$(TEMPORAL_SERVER_VERSION)
	mv $(BIN)/.temporal-server/sql $@

$(HELM):
	@echo "building helm $(HELM_VERSION) (about 4 minutes the first time)…"
	GOBIN=$(BIN) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
$(KUBECONFORM):
	GOBIN=$(BIN) $(GO) install github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION)

## test-cluster: paysaga on a real Temporal cluster — the server (bin/temporal-server, TEMPORAL_SERVER_VERSION)
##               on PostgreSQL (PAYSAGA_TEST_POSTGRES_ADDR, default 127.0.0.1:5432, user postgres), two API and
##               two worker processes on MariaDB, Redis, RabbitMQ, a worker killed mid-run, the money invariants
##               judged (internal/temporalcluster, cluster/; about 2 minutes once the server is built)
## bench-cluster: payments/s, latency and CPU per process through 2 API instances with 1, then 2 workers on that
##                cluster (and the server's CPU profile: var/temporal-server.pprof), then the same on the dev
##                server (about 5 minutes; docs/benchmarks.md, "On a Temporal cluster")
.PHONY: test-cluster bench-cluster
bench-cluster: $(TEMPORAL) $(TEMPORAL_SERVER) $(TEMPORAL_SQL_TOOL)
	PAYSAGA_TEMPORAL_SERVER_BIN=$(TEMPORAL_SERVER) PAYSAGA_TEMPORAL_SQL_TOOL=$(TEMPORAL_SQL_TOOL) \
		PAYSAGA_BENCH_SERVER_PROFILE=$(CURDIR)/var/temporal-server.pprof \
		$(GO) test -tags cluster -count=1 -timeout 20m -run '^$$' -bench 'ClusterThroughput|DevServerThroughput' -benchtime 1x -v ./cluster
test-cluster: $(TEMPORAL) $(TEMPORAL_SERVER) $(TEMPORAL_SQL_TOOL)
	PAYSAGA_TEMPORAL_SERVER_BIN=$(TEMPORAL_SERVER) PAYSAGA_TEMPORAL_SQL_TOOL=$(TEMPORAL_SQL_TOOL) \
		$(GO) test -tags cluster -count=1 -timeout 20m ./internal/temporalcluster ./cluster

## helm-check: the Helm chart (deploy/helm/paysaga): helm lint, helm template with each of deploy/helm/values/*.yaml,
##             every manifest validated by kubeconform -strict against schemas generated offline from the
##             Kubernetes $(KUBERNETES_VERSION) OpenAPI document (module k8s.io/kubernetes; deploy/kubeschema) into var/
KUBE_SCHEMAS := $(CURDIR)/var/kubeschemas/$(KUBERNETES_VERSION)
.PHONY: helm-check
helm-check: $(HELM) $(KUBECONFORM) $(KUBE_SCHEMAS)/.generated
	@for f in deploy/helm/values/*.yaml; do \
		echo "helm lint + template + kubeconform: $$f"; \
		$(HELM) lint --strict --kube-version $(KUBERNETES_VERSION) deploy/helm/paysaga -f $$f >/dev/null || exit 1; \
		$(HELM) template paysaga deploy/helm/paysaga --kube-version $(KUBERNETES_VERSION) -f $$f | \
			$(KUBECONFORM) -strict -summary -schema-location '$(KUBE_SCHEMAS)/{{ .ResourceKind }}{{ .KindSuffix }}.json' - || exit 1; \
	done
	PAYSAGA_KUBE_SCHEMAS=$(KUBE_SCHEMAS) $(GO) test -tags helm -count=1 -run 'Helm|Kubeconform' ./deploy
$(KUBE_SCHEMAS)/.generated:
	@dir=$$(cd /tmp && $(GO) mod download -json k8s.io/kubernetes@$(KUBERNETES_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
		test -n "$$dir" || { echo "go mod download k8s.io/kubernetes@$(KUBERNETES_VERSION) failed" >&2; exit 1; }; \
		$(GO) run ./deploy/kubeschema -swagger "$$dir/api/openapi-spec/swagger.json" -out $(KUBE_SCHEMAS)
	touch $@
