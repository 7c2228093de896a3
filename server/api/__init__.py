"""The HTTP API: routing table, interaction handlers, bundles, operations and the Flask glue."""
