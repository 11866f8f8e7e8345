# Each target sets itself up on a fresh machine: a virtual environment with every package of the
# repository installed editable. The Kafka jars are fetched by the first run that needs Kafka.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PACKAGES := contracts services/runtime[embedded] services/registry services/monitoring services/eligibility services/notifications

.PHONY: run test unit faults bench bench-import bench-overdue bench-visits bench-period-close bench-rule-change bench-what-if bench-webhooks bench-visit-webhook bench-live-assessment schemas

$(VENV)/.installed: requirements-dev.txt $(wildcard contracts/pyproject.toml services/*/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt $(foreach p,$(PACKAGES),-e './$(p)')
	touch $@

run: $(VENV)/.installed  ## the platform with its demo, on an embedded PostgreSQL and Apache Kafka
	$(VENV)/bin/ejsika up

test: $(VENV)/.installed  ## every test: unit, integration and e2e on real PostgreSQL and Kafka
	$(PY) -m pytest

unit: $(VENV)/.installed  ## the tests that need no infrastructure
	$(PY) -m pytest contracts services/*/tests/unit

faults: $(VENV)/.installed  ## the fault suite: kills, broker and database restarts, poison, a burst; a ledger check and a table per scenario
	$(PY) -m pytest -m faults tests/faults

bench: $(VENV)/.installed  ## 100,000 households through the first flow, next to a raw Kafka/PostgreSQL loop
	$(PY) -m tests.benchmark.first_flow

bench-import: $(VENV)/.installed  ## 1,000,000 synthetic Banten households imported, and single writes at 200/s
	$(PY) -m tests.benchmark.registry_import

bench-visits: $(VENV)/.installed  ## 100,000 visits uploaded in batches of 500: accepted and published per second
	$(PY) -m tests.benchmark.visit_intake

bench-overdue: $(VENV)/.installed  ## the overdue check over 1,000,000 active households, in bounded batches
	$(PY) -m tests.benchmark.overdue_check

bench-webhooks: $(VENV)/.installed  ## 50,000 webhook deliveries to 10 local agencies, one failing: each agency's rate, and the others' against healthy runs either side
	$(PY) -m tests.benchmark.webhook_delivery

bench-visit-webhook: $(VENV)/.installed  ## visits posted to monitoring at 200/s for 60 s: p50/p95 until the agency's webhook
	$(PY) -m tests.benchmark.visit_to_webhook

bench-period-close: $(VENV)/.installed  ## closing a verification period over 1,000,000 active households, in batches
	$(PY) -m tests.benchmark.period_close

bench-rule-change: $(VENV)/.installed  ## a new rule set activated over 1,000,000 households: reassessed per second
	$(PY) -m tests.benchmark.rule_change

bench-what-if: $(VENV)/.installed  ## a what-if (threshold, quota, a new rule set) over 1,000,000 households: seconds per phase
	$(PY) -m tests.benchmark.what_if

bench-live-assessment: $(VENV)/.installed  ## 100,000 households imported through the registry: eligibility's consumer lag sampled, does it stay bounded?
	$(PY) -m tests.benchmark.live_assessment

schemas: $(VENV)/.installed  ## freeze the JSON Schema of each new event version
	$(PY) -m ejsika_contracts.schemas --write
