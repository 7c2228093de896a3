"""The shared care record's profiles and terminology: loading, compiling and checking resources."""

from .source import DEFAULT_BASE, ConformanceSet, load_conformance
from .terminology import NotEnumerable, Terminology
from .validator import CARE_RECORD, ProfileValidator

__all__ = [
    "CARE_RECORD",
    "DEFAULT_BASE",
    "ConformanceSet",
    "NotEnumerable",
    "ProfileValidator",
    "Terminology",
    "load_conformance",
]
