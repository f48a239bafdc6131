"""Infrastructure faults under load: kill -9 of each service, the broker and PostgreSQL down,
a webhook receiver gone; then every guarantee checked (see docs/reliability.md)."""
