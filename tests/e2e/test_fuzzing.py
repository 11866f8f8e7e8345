"""Schemathesis against the OpenAPI document every running service serves, as each of the six roles.

For every operation of every service and every role (a real Keycloak token of that role), cases are
generated from the document, valid and invalid ones, and sent to the running service. Each answer
must be no 5xx, a documented status, with a documented content type and a body that conforms to the
documented schema (and the documented headers). Generation is derandomized and small, so a run is
reproducible and bounded; every failure of every (operation, role) is collected and reported at once.

A failing cell is reproduced by the curl command printed in the failure report (replace the token).
Some invalid cases leave the token out on purpose (schemathesis' negative auth): those get a 401.
The fuzzer registers (next to) no household: its NIKs do not pass the registry's rules; the summary
counts those it did register.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import ACTORS, Platform

ROLES = tuple(ACTORS)  # pendamping, supervisor, operator, auditor, admin, agency
SERVICES = ("registry", "monitoring", "eligibility", "notifications")
EXAMPLES = 10  # per operation, per role, per generation mode (valid / invalid data)
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]
# Fixed generation: no example database, derandomized, no shrinking (each failing case is printed as
# curl, and shrinking would multiply the requests of a failing cell).
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, print_blob=False,
                phases=(Phase.explicit, Phase.generate), report_multiple_bugs=False,
                suppress_health_check=list(HealthCheck))


@dataclass
class Tally:
    operations: int = 0
    cells: int = 0  # operation x role x mode
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    registered: int = 0  # households the fuzzer managed to register (201 on POST /households)
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def tallies(request: pytest.FixtureRequest):
    found: dict[str, Tally] = {}
    yield found
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None or not found:
        return
    with capture.global_and_fixture_disabled():
        report(reporter.write_line, found)


def report(write, found: dict[str, Tally]) -> None:
    write("")
    write(f"schemathesis: every operation x {len(ROLES)} roles x {len(MODES)} modes (valid, invalid data) "
          f"x up to {EXAMPLES} examples")
    for service, t in found.items():
        write(f"  {service:13} {t.operations:2} operations, {t.cells:3} cells, {t.requests:5} requests, "
              f"{len(t.failures)} failing cells, {t.registered} households registered, {t.seconds:5.1f} s, "
              f"statuses {dict(sorted(t.statuses.items()))}")
    write(f"  total         {sum(t.operations for t in found.values())} operations, "
          f"{sum(t.cells for t in found.values())} cells, {sum(t.requests for t in found.values())} requests, "
          f"{sum(len(t.failures) for t in found.values())} failing cells")


def token_of(platform: Platform, role: str) -> str:
    kind, name = ACTORS[role]
    return platform.tokens.for_user(name) if kind == "user" else platform.tokens.for_client(name)


def registered(operation: schemathesis.APIOperation, response) -> int:
    if operation.method.upper() != "POST" or response.status_code not in (200, 201):
        return 0
    if operation.path == "/households":
        return int(response.status_code == 201)
    if operation.path == "/households/batch":
        return sum(r.get("result") == "registered" for r in response.json().get("results", []))
    return 0


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_answers_as_documented_to_every_role(platform: Platform, service: str, tallies):
    base_url = platform.url(service)
    document = httpx.get(f"{base_url}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, f"{service} documents no operation"
    tally = tallies.setdefault(service, Tally())
    tally.operations = len(operations)
    started = time.monotonic()
    session = requests.Session()
    for operation in operations:
        for role in ROLES:
            headers = {"Authorization": f"Bearer {token_of(platform, role)}"}
            for mode in MODES:
                tally.cells += 1

                @FUZZ
                @given(case=operation.as_strategy(generation_mode=mode))
                def fuzz(case: schemathesis.Case) -> None:
                    response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
                    tally.requests += 1
                    tally.statuses[response.status_code] += 1
                    tally.registered += registered(operation, response)
                    case.validate_response(response, checks=CHECKS, headers=headers)

                try:
                    fuzz()
                except (Exception, BaseExceptionGroup) as error:  # schemathesis' FailureGroup is the latter
                    tally.failures.append(f"--- {service} {operation.label} as {role} ({mode.value}):\n"
                                          f"{error}".replace(headers["Authorization"], "Bearer $TOKEN"))
    tally.seconds = time.monotonic() - started
    assert not tally.failures, "\n".join(tally.failures)
