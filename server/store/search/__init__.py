"""FHIR search: parsing, SQL predicates per parameter type, and the engine that runs them."""
