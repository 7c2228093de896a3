"""Searches too large are refused (400, what to narrow) before any SQL is built, with short log lines."""

from __future__ import annotations

import logging

import pytest

from tests.resilience.servers import assert_still_serving
from tests.support import assert_outcome

FORM = "application/x-www-form-urlencoded"
LOG_LINE_LIMIT = 8000


@pytest.mark.parametrize(("query", "expression", "says"), [
    ("&".join(["name=a"] * 500), "name", "at most 40"),
    ("name=" + ",".join(str(n) for n in range(201)), "name", "at most 200 are allowed in one parameter"),
    ("&".join(f"name={','.join(str(n) for n in range(150))}" for _ in range(7)), "name", "more than 1000 values"),
    ("&".join(["_include=Patient:general-practitioner"] * 21), "_include", "at most 20"),
    ("&".join(["_include:iterate=Patient:link"] * 5), "_include", "':iterate'"),
    ("link:Patient." * 7 + "name=a", "link:Patient." * 7 + "name", "deeper than"),
])
def test_a_search_too_large_is_refused_before_any_sql(client, query: str, expression: str, says: str,
                                                      caplog) -> None:
    with caplog.at_level(logging.DEBUG):
        by_post = client.post("/fhir/Patient/_search", data=query, content_type=FORM)
        assert_outcome(by_post, 400, "too-costly", text=says)
        if len(query) < 7000:
            assert_outcome(client.get(f"/fhir/Patient?{query}"), 400, "too-costly", text=says)
    assert any(expression.startswith(e) or e.startswith(expression.split(".")[0])
               for e in by_post.get_json()["issue"][0].get("expression", [])), by_post.get_json()
    assert all(len(record.getMessage()) < LOG_LINE_LIMIT for record in caplog.records)
    assert_still_serving(client)


def test_ten_thousand_repeats_by_post_are_a_400_with_a_short_log(client, caplog) -> None:
    with caplog.at_level(logging.DEBUG):
        answer = client.post("/fhir/Patient/_search", data="&".join(["name=a"] * 10000), content_type=FORM)
    assert_outcome(answer, 400, "too-costly", expression="name", text="at most 40")
    assert all(len(record.getMessage()) < LOG_LINE_LIMIT for record in caplog.records)
    assert_still_serving(client)


