"""Shared care record server: a FHIR R4 server for integrated health and social care."""

__version__ = "0.1.0"
