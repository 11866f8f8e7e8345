"""The relay's and the supervisor's metrics: valid Prometheus text, and the alerts on them name
series the runtime really exposes (an alert on a misspelt metric never fires)."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from ruamel.yaml import YAML

from ejsika_runtime.metrics import RuntimeMetrics
from ejsika_runtime.testing import promtool

ALERTS = Path(__file__).parents[4] / "deploy" / "prometheus" / "alerts.yml"


def exposition() -> str:
    registry = CollectorRegistry()
    metrics = RuntimeMetrics(registry, "registry")
    metrics.quarantined("ejsika.household", "too_large")
    metrics.outbox_quarantine_rows.set(1)
    metrics.publish_failed("KafkaTimeoutError")
    metrics.loop_up("registry-deliver", False)
    metrics.loop_restarted("registry-deliver")
    return generate_latest(registry).decode()


def test_the_metrics_pass_promtool():
    checked = promtool("check", "metrics", input=exposition())
    assert checked.returncode == 0 and not checked.stdout.strip() and not checked.stderr.strip(), checked


def test_the_alert_rules_load_and_the_reliability_alerts_watch_exposed_series():
    checked = promtool("check", "rules", str(ALERTS), input="")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    rules = {rule["alert"]: rule["expr"] for group in YAML(typ="safe").load(ALERTS.read_text())["groups"]
             for rule in group["rules"]}
    exposed = set(re.findall(r"^(ejsika_\w+?)(?:\{| )", exposition(), re.MULTILINE))
    for alert, metric in (("EjsikaOutboxQuarantine", "ejsika_outbox_quarantine_rows"),
                          ("EjsikaRelayFailing", "ejsika_outbox_publish_failures_total"),
                          ("EjsikaBackgroundLoopDown", "ejsika_background_loop_restarts_total")):
        assert metric in rules[alert] and metric in exposed, alert
