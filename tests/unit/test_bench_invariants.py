"""The lifecycle bench's checks (`bench/invariants.py`) find what they are for: a sale not
shipped or shipped twice, a second fulfillment, stock left reserved or gone missing, a dead
letter. The database is played by a fake that answers each query from a table of answers."""

from typing import Any
from uuid import uuid4

from bench import invariants

EXPECTED = invariants.Expected(tenant=uuid4(), sales=10, units=12, stocked=100)


class Answers:
    """asyncpg's fetch/fetchrow/fetchval, answered by the first key found in the query."""

    def __init__(self) -> None:
        self.answers: dict[str, Any] = {
            "GROUP BY status": [("shipped", 10)],
            "HAVING count(*) <> 1": 0,
            "FROM fulfilment.fulfillments": {"total": 10, "sales": 10, "unshipped": 0},
            "FROM stock.stock_records": {"on_hand": 88, "reserved": 0, "bad": 0},
            "status = 'active'": 0,
            "to_regclass": True,
            "count(*) FROM": 0,
        }

    def _answer(self, query: str) -> Any:
        return next(value for key, value in self.answers.items() if key in query)

    async def fetch(self, query: str, *args: Any) -> Any:
        return self._answer(query)

    async def fetchrow(self, query: str, *args: Any) -> Any:
        return self._answer(query)

    async def fetchval(self, query: str, *args: Any) -> Any:
        return self._answer(query)


async def findings(conn: Answers) -> list[str]:
    found: list[str] = []
    await invariants._check_sales(conn, EXPECTED, found)  # type: ignore[arg-type]
    await invariants._check_stock(conn, EXPECTED, found)  # type: ignore[arg-type]
    await invariants._check_leftovers(conn, found)  # type: ignore[arg-type]
    return found


async def test_a_clean_run_has_no_findings() -> None:
    assert await findings(Answers()) == []


async def test_each_broken_invariant_is_found() -> None:
    broken = {
        "GROUP BY status": [("shipped", 9), ("pending", 1)],
        "HAVING count(*) <> 1": 1,
        "FROM fulfilment.fulfillments": {"total": 11, "sales": 10, "unshipped": 1},
        "FROM stock.stock_records": {"on_hand": 87, "reserved": 1, "bad": 1},
        "status = 'active'": 1,
    }
    for key, value in broken.items():
        conn = Answers()
        conn.answers[key] = value
        assert await findings(conn), f"{key} = {value} went unnoticed"


async def test_a_dead_letter_or_an_unpublished_event_is_found() -> None:
    conn = Answers()
    conn.answers["count(*) FROM"] = 1
    found = await findings(conn)
    assert any("dead letters" in line for line in found)
    assert any("unpublished outbox rows" in line for line in found)
