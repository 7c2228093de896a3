"""A gunicorn worker of the FHIR server loads every supported type's model before its first request."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

from server.fhir import types
from server.fhir.types import TypeRegistry

PROJECT = Path(__file__).resolve().parents[2]


def gunicorn_settings() -> object:
    spec = importlib.util.spec_from_file_location("gunicorn_settings", PROJECT / "gunicorn.conf.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_the_worker_hook_loads_every_supported_model() -> None:
    registry = TypeRegistry.load()
    types.model_class.cache_clear()
    server = SimpleNamespace(extensions={"sharedcare": SimpleNamespace(services=SimpleNamespace(types=registry))})
    gunicorn_settings().post_worker_init(SimpleNamespace(wsgi=server))  # type: ignore[attr-defined]
    assert types.model_class.cache_info().currsize == len(registry.supported)
    for name in ("Patient", "CarePlan", "Subscription"):
        assert types.model_class(name).__name__ == name


def test_the_hook_leaves_other_applications_alone() -> None:
    types.model_class.cache_clear()
    gunicorn_settings().post_worker_init(SimpleNamespace(wsgi=SimpleNamespace(extensions={})))  # type: ignore[attr-defined]
    gunicorn_settings().post_worker_init(SimpleNamespace(wsgi=object()))  # type: ignore[attr-defined]
    assert types.model_class.cache_info().currsize == 0
