"""Declarative extract-to-FHIR mappings and the small engine that applies them."""
