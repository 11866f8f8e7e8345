"""Role x endpoint x own/other object, generated from the routes every running service documents.

Each service's OpenAPI document names the roles of every operation (`x-roles`, written by the
runtime from the route's declared policy). For each operation and each of the six roles, a caller
holding a real Keycloak token of that role must be refused when the role is not listed (403, or 404
for an agency, which must not learn that a household exists), and when it is listed must reach the
objects of its caseload, area or programme and nothing else. An operation with no example below
fails the test: a new endpoint cannot land without its row in the matrix.
"""

from __future__ import annotations

from collections.abc import Callable
import uuid
from dataclasses import dataclass

import httpx
import pytest

from ejsika_runtime.demo.synthetic import Families

from .conftest import Platform, eventually

ROLES = ("pendamping", "supervisor", "operator", "auditor", "admin", "agency")


@dataclass
class World:
    platform: Platform
    own: dict  # registered by pendamping-demo, in Kota Cilegon (3672), programme jscm
    other: dict  # registered by pendamping-other, in Kab. Lebak (3602), programme jamsosratu
    families: Families
    own_subscription: str  # of dinas-pendidikan, the agency role's own agency
    other_subscription: str  # of dinas-kesehatan

    def subscription(self, agency: str) -> str:
        """A fresh subscription of `agency` (to an address that never answers), made by the admin."""
        answer = self.platform.client("notifications", role="admin").post("/subscriptions", json=_subscribing(agency))
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]

    @property
    def own_id(self) -> str:
        return self.own["household_id"]

    @property
    def other_id(self) -> str:
        return self.other["household_id"]

    def sees_other(self, role: str) -> bool:
        return role == "auditor"

    def fresh(self, role: str, in_scope: bool) -> dict:
        """A registration the caller may (or may not) register, by its area and programme."""
        body = self.families.registration(programme="jscm" if in_scope else "jamsosratu")
        body["region_code"] = "3672011001" if in_scope else "3602012002"
        if role == "operator" and not in_scope:
            body["programme"] = "jamsosratu"
        return body


# One cell: (label, response, expected statuses)
Cell = tuple[str, httpx.Response, set[int]]
Example = Callable[[World, str, httpx.Client], list[Cell]]


def _own_other(url: Callable[[str], str]) -> Example:
    def example(w: World, role: str, http: httpx.Client) -> list[Cell]:
        return [("own", http.get(url(w.own_id)), {200}),
                ("other", http.get(url(w.other_id)), {200} if w.sees_other(role) else {404})]
    return example


def _register_one(w: World, role: str, http: httpx.Client) -> list[Cell]:
    cells = [("own", http.post("/households", json=w.fresh(role, True)), {201})]
    if role != "pendamping":  # a pendamping's registrations join their own caseload wherever they are
        cells.append(("other", http.post("/households", json=w.fresh(role, False)), {422}))
    return cells


def _register_batch(w: World, role: str, http: httpx.Client) -> list[Cell]:
    answer = http.post("/households/batch", json={"registrations": [w.fresh(role, True), w.fresh(role, False)]})
    results = [r["result"] for r in answer.json()["results"]] if answer.status_code == 200 else []
    expected = ["registered", "registered"] if role == "pendamping" else ["registered", "rejected"]
    return [("own+other", answer, {200}), (f"results {results}", answer, {200} if results == expected else {-1})]


def _data_subject(w: World, role: str, http: httpx.Client) -> list[Cell]:
    cells = []
    for label, household, visible in (("own", w.own, True), ("other", w.other, w.sees_other(role))):
        answer = http.post("/data-subject-requests", json={"nik": household["members"][0]["nik"]})
        found = [h["id"] for h in answer.json()["households"]] if answer.status_code == 200 else None
        cells.append((f"{label} found {found}", answer,
                      {200} if found == ([household["household_id"]] if visible else []) else {-1}))
    return cells


def _overdue(w: World, role: str, http: httpx.Client) -> list[Cell]:
    answer = http.get("/visits/overdue", params={"as_of": "2999-01-01", "limit": 1000})
    listed = {v["household_id"] for v in answer.json()["visits"]} if answer.status_code == 200 else set()
    right = w.own_id in listed and (w.other_id in listed) == w.sees_other(role)
    return [("own only" if role != "auditor" else "both", answer, {200} if right else {-1})]


def _subscribing(agency: str) -> dict:
    # Port 9 (discard) answers nothing: these subscriptions only ever fail, and bother no receiver.
    return {"agency": agency, "event_type": "eligibility.assessed", "url": "http://127.0.0.1:9/hooks",
            "filter": {"region_prefix": "3674", "eligible_only": True}}


def _is_admin_like(role: str) -> bool:
    return role in ("admin", "auditor")


def _add_agency(w: World, role: str, http: httpx.Client) -> list[Cell]:
    code = f"dinas-{uuid.uuid4().hex[:8]}"
    body = {"code": code, "name": "Dinas Sosial", "profile": ["household_id", "eligible"]}
    return [("new", http.post("/agencies", json=body), {201}), ("again", http.post("/agencies", json=body), {409})]


def _list_agencies(w: World, role: str, http: httpx.Client) -> list[Cell]:
    return [("all", http.get("/agencies"), {200})]


def _add_subscription(w: World, role: str, http: httpx.Client) -> list[Cell]:
    cells = [("own agency", http.post("/subscriptions", json=_subscribing("dinas-pendidikan")), {201})]
    other = http.post("/subscriptions", json=_subscribing("dinas-kesehatan"))
    return cells + [("other agency", other, {201} if role == "admin" else {403})]


def _list_subscriptions(w: World, role: str, http: httpx.Client) -> list[Cell]:
    answer = http.get("/subscriptions", params={"agency": "dinas-kesehatan"})
    found = answer.json() if answer.status_code == 200 else []
    # an agency naming another agency still sees only its own
    right = (w.other_subscription in {s["id"] for s in found}) == _is_admin_like(role) and (
        _is_admin_like(role) or all(s["agency"] == "dinas-pendidikan" for s in found))
    return [("asking for another agency's", answer, {200} if right else {-1})]


def _deactivate(w: World, role: str, http: httpx.Client) -> list[Cell]:
    return [("own", http.delete(f"/subscriptions/{w.subscription('dinas-pendidikan')}"), {204}),
            ("other", http.delete(f"/subscriptions/{w.subscription('dinas-kesehatan')}"),
             {204} if role == "admin" else {404})]


def _redrive(w: World, role: str, http: httpx.Client) -> list[Cell]:
    return [("own", http.post(f"/subscriptions/{w.own_subscription}/redrive"), {200}),
            ("other", http.post(f"/subscriptions/{w.other_subscription}/redrive"),
             {200} if role == "admin" else {404})]


def _deliveries(w: World, role: str, http: httpx.Client) -> list[Cell]:
    return [("own", http.get("/deliveries", params={"subscription_id": w.own_subscription}), {200}),
            ("other", http.get("/deliveries", params={"subscription_id": w.other_subscription}),
             {200} if _is_admin_like(role) else {404})]


EXAMPLES: dict[tuple[str, str, str], Example] = {
    ("notifications", "post", "/agencies"): _add_agency,
    ("notifications", "get", "/agencies"): _list_agencies,
    ("notifications", "post", "/subscriptions"): _add_subscription,
    ("notifications", "get", "/subscriptions"): _list_subscriptions,
    ("notifications", "delete", "/subscriptions/{subscription_id}"): _deactivate,
    ("notifications", "post", "/subscriptions/{subscription_id}/redrive"): _redrive,
    ("notifications", "get", "/deliveries"): _deliveries,
    ("registry", "post", "/households"): _register_one,
    ("registry", "post", "/households/batch"): _register_batch,
    ("registry", "get", "/households/{household_id}"): _own_other(lambda h: f"/households/{h}"),
    ("registry", "post", "/data-subject-requests"): _data_subject,
    ("monitoring", "get", "/households/{household_id}/visits"): _own_other(lambda h: f"/households/{h}/visits"),
    ("monitoring", "get", "/visits/overdue"): _overdue,
    ("eligibility", "get", "/households/{household_id}/assessments"):
        _own_other(lambda h: f"/households/{h}/assessments"),
}
for _service in ("registry", "monitoring", "eligibility", "notifications"):
    EXAMPLES[(_service, "get", "/processing-records")] = _own_other(lambda h: f"/processing-records?household_id={h}")


@pytest.fixture(scope="module")
def world(platform: Platform) -> World:
    families = Families(seed=909)
    own = families.registration(programme="jscm")
    other = families.registration(programme="jamsosratu")
    other["region_code"] = "3602012002"
    for body, who in ((own, "pendamping-demo"), (other, "pendamping-other")):
        answer = platform.client(user=who, service="registry").post("/households", json=body)
        assert answer.status_code == 201, answer.text
        body["household_id"] = answer.json()["household_id"]
    # Each service knows both households (their scope) before the matrix reads them: an operator of
    # the household's programme then reads its record of processing there.
    for body, operator in ((own, "operator-jscm"), (other, "operator-jamsosratu")):
        for service in ("eligibility", "monitoring", "notifications"):
            trail = platform.client(service, user=operator)
            eventually(lambda: trail.get("/processing-records",
                                         params={"household_id": body["household_id"]}).status_code == 200)
    admin = platform.client("notifications", role="admin")
    health = {"code": "dinas-kesehatan", "name": "Dinas Kesehatan", "profile": ["household_id", "member_counts.toddlers"]}
    assert admin.post("/agencies", json=health).status_code in (201, 409)
    world = World(platform, own, other, families, "", "")
    world.own_subscription = world.subscription("dinas-pendidikan")
    world.other_subscription = world.subscription("dinas-kesehatan")
    return world


def test_every_role_reaches_exactly_its_objects_on_every_endpoint(platform: Platform, world: World):
    cells = failures = 0
    problems: list[str] = []
    for service in platform.ports:
        document = httpx.get(f"{platform.url(service)}/openapi.json", timeout=10).json()
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                roles = operation.get("x-roles")
                key = (service, method, path)
                if roles is None:
                    problems.append(f"{key} documents no x-roles")
                    continue
                example = EXAMPLES.get(key)
                if example is None:
                    problems.append(f"{key} has no example in the access matrix: add one")
                    continue
                for role in ROLES:
                    http = platform.client(role=role, service=service)
                    if role in roles:
                        found = example(world, role, http)
                    else:
                        answer = http.request(method.upper(), _concrete(path, world.own_id),
                                              json={} if method != "get" else None)
                        # an agency never reads family data outside notifications: not even its existence
                        hidden = role == "agency" and (service != "notifications" or path == "/processing-records")
                        found = [("forbidden role", answer, {404} if hidden else {403})]
                    for label, answer, expected in found:
                        cells += 1
                        if answer.status_code not in expected:
                            failures += 1
                            problems.append(f"{role} {method.upper()} {service}{path} [{label}]: "
                                            f"{answer.status_code}, expected {sorted(expected)}")
    print(f"access matrix: {cells} cells checked")
    assert not problems, "\n".join(problems)
    assert cells >= 6 * len(EXAMPLES)


def _concrete(path: str, household_id: str) -> str:
    return path.replace("{household_id}", household_id).replace("{subscription_id}", household_id)
