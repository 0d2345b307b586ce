"""The tamper-evident audit trail: `audit verify`, the database-role checks at `migrate` and at
start, and `db grant-app-role`."""
