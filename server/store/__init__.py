"""Storage: schema, the repository (the only writer), indexing and search, migrations."""
