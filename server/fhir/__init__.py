"""FHIR semantics with no Flask and no SQL: types, validation, outcomes, bundles, patch."""
