"""EXPLAIN (ANALYZE, BUFFERS) of every statement FHIR requests run, as a client of a given kind would run
them, on a PostgreSQL database (one a benchmark kept with --keep, say).

The requests go in-process through the server's API as the caller a bearer token of such a client makes
(subject, kind, organisation, scopes), so reach, objection checks and the audit write are all there. Each
database session loads PostgreSQL's auto_explain with analyze and buffers on and sends its plans to the
client as notices, so the plans are those of the statements exactly as the server sent them (parameters,
prepared statements and all, also those sent straight to the driver).

    ../.venv/bin/python explain.py --database postgresql+psycopg://postgres@127.0.0.1:5432/sharedcare_search_x \\
        --kind gp --organization B82001 'Observation?patient=123&_sort=-date'
"""

from __future__ import annotations

import argparse
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

SETTINGS = ("LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0", "SET auto_explain.log_analyze = on",
            "SET auto_explain.log_buffers = on", "SET auto_explain.log_timing = on",
            "SET auto_explain.log_nested_statements = on", "SET client_min_messages = log")


def plans_of(database: Any, settings: tuple[str, ...] = SETTINGS) -> list[str]:
    """Make every new connection of the database's engines explain its statements into the returned list
    (auto_explain as `settings` set it)."""
    from sqlalchemy import event

    found: list[str] = []

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        for statement in settings:
            dbapi_connection.execute(statement)
        dbapi_connection.autocommit = autocommit
        dbapi_connection.add_notice_handler(lambda notice: found.append(notice.message_primary or ""))

    database.kept.close_all()
    for engine in (database.writer, database.reader):
        event.listen(engine, "connect", on_connect)
        engine.dispose()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", required=True, help="a PostgreSQL URL")
    parser.add_argument("--kind", default="gp")
    parser.add_argument("--organization", required=True, help="ODS code or system|value")
    parser.add_argument("--scope", default="system/*.rs")
    parser.add_argument("--min-ms", type=float, default=0.0, help="show only plans of statements this slow")
    parser.add_argument("queries", nargs="+", help="FHIR GET requests relative to the base, e.g. Patient?name=x")
    args = parser.parse_args()

    from server.api.model import FhirRequest
    from server.app import create_app
    from server.config import Settings
    from server.security.clients import organization_token
    from server.security.context import Caller
    from server.security.scopes import ScopeSet

    app = create_app(Settings.from_env({}, database_url=args.database, log_level="WARNING"))
    api = app.extensions["sharedcare"]
    caller = Caller(subject=f"explain-{args.kind}", scopes=ScopeSet.of(args.scope),
                    organization=organization_token(args.organization), kind=args.kind)
    found = plans_of(api.services.database)
    for query in args.queries:
        parts = urlsplit(query)
        request = FhirRequest(method="GET", path=parts.path.lstrip("/"),
                              params=parse_qsl(parts.query, keep_blank_values=True), base_url="http://localhost/fhir")
        found.clear()
        started = time.perf_counter()
        response = api.handle(request, caller)
        elapsed = (time.perf_counter() - started) * 1000
        print(f"== GET {query} as {args.kind} {caller.organization}: {response.status} in {elapsed:.1f} ms "
              f"(with the plans' own cost), {len(found)} statements")
        for plan in found:
            duration = plan.split("duration: ", 1)[1].split(" ms", 1)[0] if "duration: " in plan else "0"
            if float(duration) >= args.min_ms:
                print(plan)
                print()
    api.services.database.dispose()


if __name__ == "__main__":
    main()
