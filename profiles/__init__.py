"""Data package: R4 definitions, profiles, terminology and rule sets the server loads (no code)."""
