"""Token requests and refused credentials are audited too (refusals as security alerts), without the secrets."""

from __future__ import annotations

import requests
from sqlalchemy import text

from tests.auth import register_client, token_answer


def rows(server, where: str, **params) -> list:
    engine = server.app.extensions["sharedcare"].services.database.writer
    with engine.connect() as connection:
        return list(connection.execute(text(f"SELECT * FROM audit_events WHERE {where}"), params))


def test_token_requests_and_refused_bearers_are_audited(server) -> None:
    client = register_client(server.app, kind="gp", organization="https://fhir.nhs.uk/Id/ods-organization-code|A81001",
                             scope="system/Patient.rs")
    status, body = token_answer(server.base, client, scope="system/Patient.rs system/CarePlan.rs")
    assert status == 200
    issued = rows(server, "client = :c AND interaction = 'token'", c=client.client_id)
    assert [(r.status, bool(r.alert)) for r in issued] == [(200, False)]
    assert "system/Patient.rs" in issued[0].detail
    refused = requests.get(f"{server.base}/Patient/pa", timeout=30,
                           headers={"Authorization": "Bearer not-a-token", "X-Request-ID": "refused-bearer-1"})
    assert refused.status_code == 401
    alert = rows(server, "request_id = 'refused-bearer-1'")
    assert [(r.status, bool(r.alert), r.interaction) for r in alert] == [(401, True, "bearer")]
    unsigned = requests.post(f"{server.base}/auth/token", timeout=30, headers={"X-Request-ID": "refused-token-1"},
                             data={"grant_type": "client_credentials", "client_assertion": "x.y.z",
                                   "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"})
    assert unsigned.status_code in (400, 401)
    assert [bool(r.alert) for r in rows(server, "request_id = 'refused-token-1'")] == [True]
    secrets = rows(server, "query LIKE :t OR detail LIKE :t", t=f"%{body['access_token'][:40]}%")
    assert secrets == []


def test_requests_refused_before_the_api_are_audited(server) -> None:
    session = server.session("gp")
    cases = [("GET", "Patient/pa", {"Accept": "application/fhir+xml"}, None, 406),
             ("POST", "Patient", {"Content-Type": "application/fhir+xml"}, b"<Patient/>", 415),
             ("POST", "Patient", {"Content-Type": "application/fhir+json"}, b"{not json", 400),
             ("TRACE", "Patient", {}, None, 405)]
    for index, (method, path, headers, data, status) in enumerate(cases):
        request_id = f"before-api-{index}"
        answer = session.request(method, f"{server.base}/{path}", data=data, timeout=30,
                                 headers={**headers, "X-Request-ID": request_id})
        assert answer.status_code == status
        assert [r.status for r in rows(server, "request_id = :r", r=request_id)] == [status], method


def test_a_case_status_answer_is_audited_with_its_patient(server) -> None:
    answer = server.call("hospital", "GET", "Patient/$case-status",
                         params={"identifier": "https://fhir.nhs.uk/Id/nhs-number|9000000017"})
    assert answer.status_code == 200
    pk = server.audit_rows(answer.request.headers["X-Request-ID"])[0].pk
    engine = server.app.extensions["sharedcare"].services.database.writer
    with engine.connect() as connection:
        named = list(connection.execute(text("SELECT patient FROM audit_patients WHERE audit_pk = :pk"), {"pk": pk})
                     .scalars())
    assert named == ["pb"]
