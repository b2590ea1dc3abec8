"""Storage adapters: MemoryStore (simulator, tests) and SqlStore (SQLite, PostgreSQL) behind the ports."""
