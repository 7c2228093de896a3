"""Extract loaders: read GP, SWIFT and hospital extracts and write them as FHIR."""
