"""Shared answers for the client's unit tests."""

from __future__ import annotations

from typing import Any

import pytest

SALE: dict[str, Any] = {
    "id": "5d1c0000-0000-0000-0000-000000000001",
    "sale_id": "SO-1",
    "status": "canceled",
}
PENDING: dict[str, Any] = {
    **SALE,
    "status": "pending",
    "version": 2,
    "shop": {"id": "shop-1"},
    "location_id": None,
    "lines": [{"sku": "MUG-1", "quantity": 1}],
    "customer": None,
    "shipping_address": None,
    "cancel_reason": None,
    "reservation": None,
    "fulfillments": [],
    "created_at": "2026-11-30T10:00:00Z",
    "updated_at": "2026-11-30T10:00:01Z",
}


@pytest.fixture
def pending_sale() -> dict[str, Any]:
    """A sale as `GET /sales/{sale_id}` answers it."""
    return dict(PENDING)
