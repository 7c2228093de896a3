"""Synthetic population generator: deterministic monthly GP, SWIFT and hospital extracts for a fictional area.

Public API: ``generate(out, patients=..., practices=..., seed=...)`` returns a ``SynthSummary``;
``NoiseRates`` sets how untidy the files are (``NoiseRates.none()`` for clean output).
"""

from .generator import generate
from .noise import NoiseRates
from .summary import FileInfo, InvalidRow, SynthSummary

__all__ = ["FileInfo", "InvalidRow", "NoiseRates", "SynthSummary", "generate"]
