"""Loading over HTTP (requests to a real server) gives the same record as loading in-process."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from flask import Flask

from mappings import Mappings
from server.cli import main
from server.security.tokenclient import BackendServicesAuth

from .conftest import SOURCES, load, load_http, search, versions

TYPES = ("Patient", "Organization", "Practitioner", "Condition", "Observation", "MedicationRequest",
         "MedicationStatement", "Encounter", "EpisodeOfCare", "Provenance")


def normalised(app: Flask) -> dict[str, list[Any]]:
    """Every resource with server-assigned ids replaced by what identifies it (its first identifier)."""
    names: dict[str, str] = {}
    found: dict[str, list[dict[str, Any]]] = {kind: search(app, kind) for kind in TYPES}
    for kind, resources in found.items():
        for r in resources:
            ident = r.get("identifier", [{}])[0]
            names[f"{kind}/{r['id']}"] = f"{kind}[{ident.get('system')}|{ident.get('value')}]" if \
                kind != "Provenance" else f"Provenance/{r['id']}"

    def clean(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: clean(v) for k, v in node.items() if k not in ("id", "versionId", "lastUpdated", "recorded")}
            if isinstance(out.get("reference"), str):
                out["reference"] = names.get(out["reference"], out["reference"])
            return out
        if isinstance(node, list):
            return [clean(v) for v in node]
        return node

    return {kind: sorted((clean(r) for r in resources), key=repr) for kind, resources in found.items()}


def test_loading_over_http_gives_the_same_record_as_in_process(
        http_app: tuple[Flask, str], new_app: Callable[[], Flask], sample_dir: Path, mappings: Mappings,
        tmp_path: Path) -> None:
    served, url = http_app
    local = new_app()
    for source in SOURCES:
        over_http = load_http(url, source, sample_dir / source, mappings, client=served.extensions["tests.client"],
                              rejects=tmp_path / "http")
        in_process = load(local, source, sample_dir / source, mappings, rejects=tmp_path / "local")
        assert over_http.by_type() == in_process.by_type(), (over_http.render(), in_process.render())
    assert normalised(served) == normalised(local)
    before = versions(served)
    for source in SOURCES:
        again = load_http(url, source, sample_dir / source, mappings, client=served.extensions["tests.client"],
                          rejects=tmp_path / "http")
        assert all(c["created"] == c["updated"] == 0 for c in again.by_type().values()), again.render()
    assert versions(served) == before


def test_the_load_command_gets_and_renews_tokens_as_a_registered_client(
        http_app: tuple[Flask, str], sample_dir: Path, tmp_path: Path) -> None:
    served, url = http_app
    client = served.extensions["tests.client"]
    key_file = tmp_path / "loader.json"
    key_file.write_text(json.dumps(client.key.as_dict(private=True)), encoding="utf-8")
    args = ["load", "gp", str(sample_dir / "gp"), "--server", url, "--client", client.client_id, "--key",
            str(key_file), "--rejects", str(tmp_path / "rejects"), "--quiet"]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    auth = BackendServicesAuth(url, client.client_id, client.key, client.scope)
    first = auth.current()
    assert auth.current() == first  # kept while fresh
    auth.expires = time.time() + 30  # within a minute of expiry: renewed
    assert auth.current() != first
    refused = CliRunner().invoke(main, ["load", "gp", str(sample_dir / "gp"), "--server", url, "--client",
                                        "no-such-client", "--key", str(key_file), "--rejects", str(tmp_path / "no"),
                                        "--quiet"])
    assert refused.exit_code == 3 and "invalid_client" in refused.output
