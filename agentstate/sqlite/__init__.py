"""The SQLite engine (apsw): the embedded default."""
