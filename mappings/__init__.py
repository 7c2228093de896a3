"""Declarative extract-to-FHIR mappings and the small engine that applies them.

``Mappings.load(base)`` reads every YAML spec under ``mappings/<source>/`` with the record's terminology;
``Mappings.mapper(source, file name, env)`` gives the ``FileMapper`` that checks and maps that file's rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .engine import FileMapper, Mapped, RefKey
from .spec import FileMapping, ReferenceSpec, ResourceSpec, load_all
from .template import SpecError
from .terminology import DEFAULT_BASE, Terminology


@dataclass
class Mappings:
    """Every bundled mapping spec, compiled against the terminology of one project base."""

    terminology: Terminology
    specs: dict[tuple[str, str], FileMapping]

    @classmethod
    def load(cls, base: str = DEFAULT_BASE) -> Mappings:
        terminology = Terminology.load(base)
        return cls(terminology, load_all(terminology))

    def spec(self, source: str, file_name: str) -> FileMapping | None:
        return self.specs.get((source, file_name))

    def files(self, source: str) -> list[str]:
        """The file names a source's extract may hold, in the order they are loaded."""
        names = [(spec.order, name) for (src, name), spec in self.specs.items() if src == source]
        return [name for _order, name in sorted(names)]

    def mapper(self, source: str, file_name: str, env: dict[str, Any]) -> FileMapper:
        spec = self.spec(source, file_name)
        if spec is None:
            raise KeyError(f"no mapping for {source} {file_name}")
        return FileMapper(spec, self.terminology, {"base": self.terminology.base, **env})


__all__ = ["FileMapper", "FileMapping", "Mapped", "Mappings", "RefKey", "ReferenceSpec", "ResourceSpec",
           "SpecError", "Terminology"]
