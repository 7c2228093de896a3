"""The load ledger's store: rows recorded and replaced per stream, and the server state entries are checked against."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Flask

from server.api.model import FhirRequest
from server.security.context import Caller
from server.store.ledger import LoadLedger

SYSTEM = "https://example.org/Id/row"


def call(app: Flask, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = app.extensions["sharedcare"].handle(FhirRequest(method=method, path=path, body=body),
                                                   Caller.system("test"))
    assert response.status < 300, response.body
    body = response.body
    return orjson.loads(body) if isinstance(body, (bytes, str)) and body else {}


def patient(app: Flask, value: str, **extra: Any) -> dict[str, Any]:
    return call(app, "POST", "Patient", {"resourceType": "Patient", "identifier": [{"system": SYSTEM, "value": value}],
                                         **extra})


def ledger_of(app: Flask) -> LoadLedger:
    return LoadLedger(app.extensions["sharedcare"].services.database)


def test_rows_are_recorded_replaced_and_forgotten_per_stream(fresh_app: Flask) -> None:
    ledger = ledger_of(fresh_app)
    rows = {f"k{n}": (f"d{n}", f'{{"n": {n}}}') for n in range(2500)}
    ledger.record("gp/Y1/patients.csv", rows)
    ledger.record("gp/Y2/patients.csv", {"k1": ("other", "{}")})
    assert ledger.entries("gp/Y1/patients.csv") == rows
    ledger.record("gp/Y1/patients.csv", {"k1": ("new", "{}"), "extra": ("e", "{}")})
    entries = ledger.entries("gp/Y1/patients.csv")
    assert entries["k1"] == ("new", "{}") and entries["extra"] == ("e", "{}") and len(entries) == 2501
    ledger.forget("gp/Y1/patients.csv", [f"k{n}" for n in range(2000)])
    assert len(ledger.entries("gp/Y1/patients.csv")) == 501
    assert ledger.entries("gp/Y2/patients.csv") == {"k1": ("other", "{}")}


def test_current_versions_leave_out_deleted_and_missing(fresh_app: Flask) -> None:
    ledger = ledger_of(fresh_app)
    a, b = patient(fresh_app, "a"), patient(fresh_app, "b")
    call(fresh_app, "PUT", f"Patient/{a['id']}", {**a, "active": True})
    call(fresh_app, "DELETE", f"Patient/{b['id']}")
    found = ledger.current_versions([("Patient", a["id"]), ("Patient", b["id"]), ("Patient", "missing"),
                                     ("Observation", a["id"])])
    assert found == {("Patient", a["id"]): 2}


def test_holders_identified_and_linked(fresh_app: Flask) -> None:
    ledger = ledger_of(fresh_app)
    a, b, c = patient(fresh_app, "a"), patient(fresh_app, "twice"), patient(fresh_app, "twice")
    patient(fresh_app, "elsewhere", identifier=[{"system": "https://example.org/other", "value": "a"}])
    holders = ledger.holders([("Patient", SYSTEM, "a"), ("Patient", SYSTEM, "twice"), ("Patient", SYSTEM, "none")])
    assert holders == {("Patient", SYSTEM, "a"): {a["id"]}, ("Patient", SYSTEM, "twice"): {b["id"], c["id"]}}
    assert sorted(ledger.identified("Patient", SYSTEM)) == sorted(
        [(a["id"], "a"), (b["id"], "twice"), (c["id"], "twice")])
    call(fresh_app, "PUT", f"Patient/{c['id']}",
         {**c, "active": False, "link": [{"other": {"reference": f"Patient/{b['id']}"}, "type": "replaced-by"}]})
    assert ledger.linked([a["id"], b["id"], c["id"]]) == {c["id"]}
    call(fresh_app, "DELETE", f"Patient/{a['id']}")
    assert ledger.holders([("Patient", SYSTEM, "a")]) == {}
