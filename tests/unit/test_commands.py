"""`python -m <service>`: which command runs, and what `migrate` says about the database."""

import pytest

from fulfilkit.commands import where


@pytest.mark.parametrize(
    ("dsn", "said"),
    [
        ("postgresql://orders:s3cret@db.internal:6432/platform", "db.internal:6432/platform"),
        ("postgresql://postgres@127.0.0.1/postgres", "127.0.0.1:5432/postgres"),
        ("postgresql://postgres:@/postgres?host=/run/pg", "/run/pg:5432/postgres"),
        ("postgresql://u:p@[::1:bad/x", "DATABASE_URL"),
    ],
)
def test_migrate_names_the_server_and_database_never_the_credentials(dsn: str, said: str) -> None:
    assert where(dsn) == said
    assert "s3cret" not in where(dsn)
