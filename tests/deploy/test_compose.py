"""Static checks of the deployment files (no Docker engine needed)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "deploy"
PLATFORM_SERVICES = ("registry", "monitoring", "eligibility", "notifications")
BROKERS = ("kafka-1", "kafka-2", "kafka-3")

# ruamel.yaml rather than PyYAML: it is already required by check-jsonschema.
_yaml = YAML(typ="safe", pure=True)


def load_yaml(path):
    return _yaml.load(path.read_text())


@pytest.fixture(scope="module")
def compose():
    return load_yaml(COMPOSE)


@pytest.fixture(scope="module")
def services(compose):
    return compose["services"]


def _one_shot_services(services):
    """Services others wait on to *finish*: they exit, so no healthcheck."""
    one_shot = set()
    for service in services.values():
        depends_on = service.get("depends_on", {})
        if isinstance(depends_on, dict):
            for name, dep in depends_on.items():
                if dep.get("condition") == "service_completed_successfully":
                    one_shot.add(name)
    return one_shot


def _bind_sources(service):
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source = volume.split(":", 1)[0]
        elif volume.get("type") == "bind":
            source = volume["source"]
        else:
            continue
        if source.startswith(("./", "../", "/")):
            yield source


def test_compose_file_matches_compose_spec():
    # The compose-spec schema is vendored in check-jsonschema, so this runs offline.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_obsolete_version_key(compose):
    assert "version" not in compose


def test_expected_services_present(services):
    expected = {*BROKERS, "postgres", "topics", "database-roles", "prometheus", "grafana", *PLATFORM_SERVICES}
    assert expected <= services.keys()


def test_every_long_running_service_has_healthcheck(services):
    one_shot = _one_shot_services(services)
    assert {"topics", "database-roles"} <= one_shot
    missing = [
        name
        for name, service in services.items()
        if name not in one_shot
        and (not service.get("healthcheck") or service["healthcheck"].get("disable"))
    ]
    assert not missing, f"services without a healthcheck: {missing}"


@pytest.mark.parametrize("name", PLATFORM_SERVICES)
def test_platform_service_wiring(services, name):
    service = services[name]
    assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (ROOT / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
    assert service["command"] == ["python", "-m", f"ejsika_{name}"]

    env = service["environment"]
    assert env["EJSIKA_KAFKA_BOOTSTRAP"] == ",".join(f"{broker}:9092" for broker in BROKERS)
    assert env["EJSIKA_HTTP_PORT"] == "8000"
    # its own database role, owning only its schema (see test_each_service_has_its_own_database_role)
    assert env["EJSIKA_DATABASE_URL"].startswith(f"postgresql://ejsika_{name}:")
    assert env["EJSIKA_DATABASE_URL"].endswith("@postgres:5432/ejsika")

    assert service["depends_on"] == {
        **{broker: {"condition": "service_healthy"} for broker in BROKERS},
        "postgres": {"condition": "service_healthy"},
        "topics": {"condition": "service_completed_successfully"},
        "database-roles": {"condition": "service_completed_successfully"},
    }
    assert "localhost:8000/healthz" in " ".join(service["healthcheck"]["test"])

    host_port = 8001 + PLATFORM_SERVICES.index(name)
    assert service["ports"] == [f"{host_port}:8000"]


SECRET_WORDS = ("PASSWORD", "SECRET", "_KEY")


def _secret_settings(services):
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in SECRET_WORDS) and not key.endswith(("_FILENAME", "_TYPE", "_CREDENTIALS")):
                yield name, key, str(value)


def test_secrets_only_come_from_environment(services):
    """Every password, secret and key is a required variable: none has a default written in the file."""
    settings = list(_secret_settings(services))
    assert len(settings) > 20, "the check found the secrets it is about"
    for name, key, value in settings:
        assert value.startswith("${") and ":?" in value and ":-" not in value, f"{name}: {key}"
    for name in PLATFORM_SERVICES:
        url = services[name]["environment"]["EJSIKA_DATABASE_URL"]
        assert f"${{POSTGRES_{name.upper()}_PASSWORD:?" in url, "required, without a default"
    assert ":-" not in services["database-roles"]["environment"]["EJSIKA_DATABASE_URL"].split("@")[0].split(":", 2)[2]


def test_three_brokers_form_one_cluster_that_survives_the_loss_of_one(services):
    environments = [services[broker]["environment"] for broker in BROKERS]
    assert len({env["CLUSTER_ID"] for env in environments}) == 1
    voters = {f"{env['KAFKA_NODE_ID']}@{broker}:9093" for env, broker in zip(environments, BROKERS)}
    for env, broker in zip(environments, BROKERS):
        assert set(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters
        assert f"SASL_SSL://{broker}:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
        assert int(env["KAFKA_MIN_INSYNC_REPLICAS"]) == 2 and int(env["KAFKA_DEFAULT_REPLICATION_FACTOR"]) == 3
        assert int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == 3
        # brokers replicate over mutual TLS; plaintext only on each container's loopback
        protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
        assert protocols["INTERNAL"] == protocols["CONTROLLER"] == "SSL"
        assert env["KAFKA_LISTENER_NAME_INTERNAL_SSL_CLIENT_AUTH"] == "required"
        assert env["KAFKA_LISTENER_NAME_CONTROLLER_SSL_CLIENT_AUTH"] == "required"
        plaintext = [name for name, protocol in protocols.items() if protocol == "PLAINTEXT"]
        for listener in env["KAFKA_LISTENERS"].split(","):
            if listener.split(":")[0] in plaintext:
                assert listener.split("//")[1].startswith("127.0.0.1:"), listener
    volumes = [services[broker]["volumes"][0].split(":")[0] for broker in BROKERS]
    assert len(set(volumes)) == 3, "each broker its own log"


def test_topics_are_created_with_three_replicas(services):
    command = services["topics"]["command"]
    assert command[:3] == ["ejsika", "topics", "create"]
    assert command[command.index("--replication-factor") + 1] == "3"
    assert set(services["topics"]["depends_on"]) == set(BROKERS)


def test_each_service_has_its_own_database_role(services):
    roles = services["database-roles"]
    assert roles["command"] == ["ejsika", "database", "roles"]
    assert roles["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    env = roles["environment"]
    assert env["EJSIKA_DATABASE_URL"].startswith("postgresql://${POSTGRES_USER:-ejsika}:")
    for name in PLATFORM_SERVICES:
        password = env[f"EJSIKA_DATABASE_PASSWORD_{name.upper()}"]
        assert password.startswith(f"${{POSTGRES_{name.upper()}_PASSWORD:?")
        assert services[name]["environment"]["EJSIKA_DATABASE_URL"] == \
            f"postgresql://ejsika_{name}:{password}@postgres:5432/ejsika", "the password the role was given"
    assert "EJSIKA_DATABASE_URL" not in services["topics"]["environment"]


def test_delivery_metrics_are_grouped_by_agency_not_by_subscription():
    alerts = (DEPLOY / "prometheus" / "alerts.yml").read_text()
    dashboard = (DEPLOY / "grafana" / "dashboards" / "ejsika-overview.json").read_text()
    for text in (alerts, dashboard):
        assert "sum by (agency) (ejsika_deliveries_pending)" in text
        assert "subscription" not in text


def test_mounted_deploy_files_exist(services):
    sources = [source for service in services.values() for source in _bind_sources(service)]
    assert any(source.startswith("./deploy/") for source in sources)
    missing = [source for source in sources if not (ROOT / source).exists()]
    assert not missing, f"mounted paths that do not exist: {missing}"


def test_prometheus_scrapes_every_service():
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    targets = {
        target
        for job in config["scrape_configs"]
        if job.get("metrics_path", "/metrics") == "/metrics"
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    for name in PLATFORM_SERVICES:
        assert f"{name}:8000" in targets

    for rule_file in config["rule_files"]:
        assert (DEPLOY / "prometheus" / rule_file).is_file()


def test_alert_rules_cover_key_signals():
    rules = load_yaml(DEPLOY / "prometheus" / "alerts.yml")
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    for rule in (rule for group in rules["groups"] for rule in group["rules"]):
        assert rule["alert"] and rule["expr"].strip()
    joined = "\n".join(exprs)
    for metric in (
        'up{job="ejsika"}',
        "ejsika_outbox_oldest_age_seconds",
        "ejsika_dead_letters_total",
        "ejsika_deliveries_pending",
    ):
        assert metric in joined


def _panels(panels):
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def test_dashboard_panels_have_queries():
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "ejsika-overview.json").read_text())
    panels = [panel for panel in _panels(dashboard["panels"]) if panel["type"] != "row"]
    assert panels
    for panel in panels:
        targets = panel.get("targets", [])
        assert targets, f"panel {panel['title']!r} has no targets"
        for target in targets:
            assert target.get("expr", "").strip(), f"panel {panel['title']!r} has an empty query"

    exprs = "\n".join(target["expr"] for panel in panels for target in panel["targets"])
    for metric in (
        "faststream_received_messages_total",
        "faststream_received_processed_messages_duration_seconds_bucket",
        "ejsika_outbox_oldest_age_seconds",
        "ejsika_outbox_pending",
        "ejsika_dead_letters_total",
        "ejsika_households_by_status",
        "ejsika_deliveries_pending",
    ):
        assert metric in exprs


def test_grafana_provisioning_parses(services):
    provisioning = DEPLOY / "grafana" / "provisioning"
    datasources = load_yaml(provisioning / "datasources" / "prometheus.yml")
    (datasource,) = datasources["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"

    dashboards = load_yaml(provisioning / "dashboards" / "dashboards.yml")
    (provider,) = dashboards["providers"]
    assert provider["type"] == "file"
    dashboards_mount = f"./deploy/grafana/dashboards:{provider['options']['path']}:ro"
    assert dashboards_mount in services["grafana"]["volumes"]
