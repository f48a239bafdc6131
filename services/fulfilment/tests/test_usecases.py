"""Each use case against a real PostgreSQL and a real HTTP stand-in for orders."""

import uuid
from typing import Any

import asyncpg
import pytest

from fulfilkit import contracts as c
from fulfilkit.errors import NotFound
from fulfilkit.events import utcnow
from fulfilkit.received import Event, decode_event
from fulfilment import store, usecases
from fulfilment.orders_client import OrdersClient, OrdersRefused, OrdersUnavailable
from fulfilment.settings import FulfilmentSettings
from fulfilment.settled import Settled
from fulfilment.usecases import Refusal, StatusUpdate

pytestmark = pytest.mark.integration

ACTOR = "test"
SETTINGS = FulfilmentSettings(
    shipping_provider_rules={"location:wh-freight": "fulfil-freight"},
)


async def outbox(pool: asyncpg.Pool, tenant: uuid.UUID) -> list[Event[Any]]:
    rows = await pool.fetch(
        "SELECT payload FROM fulfilment.outbox WHERE key LIKE $1 ORDER BY seq", f"{tenant}:%"
    )
    return [decode_event(r["payload"]) for r in rows]


async def rows(pool: asyncpg.Pool, tenant: uuid.UUID) -> dict[str, tuple[str, int]]:
    found = await pool.fetch(
        "SELECT sale_id, status, version FROM fulfilment.fulfillments WHERE tenant_id = $1",
        tenant,
    )
    return {r["sale_id"]: (r["status"], r["version"]) for r in found}


async def shipping(pool, orders, session, tenant, count: int) -> list:
    sales = [orders.add(tenant) for _ in range(count)]
    outcome = await usecases.init_shipping(
        pool,
        orders.client(session),
        SETTINGS,
        tenant,
        ACTOR,
        [s.sale_id for s in sales],
        settled=Settled(),
    )
    assert outcome.refused == []
    return outcome.fulfillments


# init_shipping


async def test_init_shipping_claims_each_sale_and_gives_it_one_fulfillment(pool, orders, session):
    tenant = uuid.uuid4()
    post = orders.add(tenant, location_name="Warehouse One")
    freight = orders.add(tenant, location_id="wh-freight", bulky=True)
    canceled = orders.add(tenant, status="canceled")
    asked = [post.sale_id, "not a sale id", freight.sale_id, canceled.sale_id, "S-missing"]

    outcome = await usecases.init_shipping(
        pool, orders.client(session), SETTINGS, tenant, ACTOR, asked, settled=Settled()
    )

    assert [(f.sale_id, f.sale, f.status) for f in outcome.fulfillments] == [
        (post.sale_id, post.id, "waiting_for_picking"),
        (freight.sale_id, freight.id, "waiting_for_picking"),
    ]
    by_sale = {f.sale_id: f for f in outcome.fulfillments}
    assert by_sale[post.sale_id].shipping_provider == "fulfil-post"
    assert by_sale[post.sale_id].tracking_number.startswith("FP")
    assert by_sale[freight.sale_id].shipping_provider == "fulfil-freight"
    assert (by_sale[post.sale_id].is_bulky, by_sale[freight.sale_id].is_bulky) == (False, True)
    # what the fulfillment copies from its sale: the shop, when it was created, the location's
    # name where the reservation gives one (else the location is named by its code)
    assert [
        (f.shop_channel, f.shop_name, f.sale_date_created, f.location, f.location_name)
        for f in outcome.fulfillments
    ] == [
        ("web", "test", post.created_at, "wh-1", "Warehouse One"),
        ("web", "test", freight.created_at, "wh-freight", "wh-freight"),
    ]
    assert [(r.item, r.code, r.extra) for r in outcome.refused] == [
        ("not a sale id", "validation", {}),
        (canceled.sale_id, "invalid_status", {"status": "canceled"}),
        ("S-missing", "not_found", {"status": None}),
    ]
    assert outcome.refused[0].detail.startswith("A sale_id must be 1-64 characters")
    # the invalid id never reached orders
    assert orders.requests == [
        (
            "/internal/sales/claim",
            tenant,
            [post.sale_id, freight.sale_id, canceled.sale_id, "S-missing"],
        )
    ]
    published = await outbox(pool, tenant)
    assert {e.dataversion for e in published} == {"2"}
    assert sorted((e.type, e.data.sale.sale_id) for e in published) == sorted(
        [(c.FULFILLMENT_CREATED, post.sale_id), (c.FULFILLMENT_CREATED, freight.sale_id)]
    )
    assert {e.data.id for e in published} == {f.id for f in outcome.fulfillments}


async def test_init_shipping_again_answers_the_same_without_asking_orders(pool, orders, session):
    tenant = uuid.uuid4()
    first = await shipping(pool, orders, session, tenant, 2)
    orders.requests.clear()

    again = await usecases.init_shipping(
        pool,
        orders.client(session),
        SETTINGS,
        tenant,
        ACTOR,
        [f.sale_id for f in first],
        settled=Settled(),
    )

    assert again.fulfillments == first and again.refused == []
    assert orders.requests == []
    assert len(await outbox(pool, tenant)) == 2


@pytest.mark.parametrize(
    ("status", "error"), [(422, OrdersRefused), (401, OrdersUnavailable), (503, OrdersUnavailable)]
)
async def test_init_shipping_writes_nothing_when_orders_does_not_claim(
    pool, orders, session, status, error
):
    tenant = uuid.uuid4()
    sale = orders.add(tenant)
    orders.answer_status = status

    with pytest.raises(error):
        await usecases.init_shipping(
            pool, orders.client(session), SETTINGS, tenant, ACTOR, [sale.sale_id], settled=Settled()
        )

    assert await rows(pool, tenant) == {}
    assert await outbox(pool, tenant) == []


async def test_an_answer_of_orders_that_is_not_a_claim_writes_nothing(pool, orders, session):
    tenant = uuid.uuid4()
    sale = orders.add(tenant)
    orders.answer_body = b'{"claimed": "all of them", "errors": []}'

    with pytest.raises(OrdersUnavailable, match="unreadable"):
        await usecases.init_shipping(
            pool, orders.client(session), SETTINGS, tenant, ACTOR, [sale.sale_id], settled=Settled()
        )

    assert await rows(pool, tenant) == {}


async def test_init_shipping_says_when_orders_cannot_be_reached(pool, session):
    nobody = OrdersClient(session, "http://127.0.0.1:9", "token")  # nothing listens there
    with pytest.raises(OrdersUnavailable, match="cannot be reached"):
        await usecases.init_shipping(
            pool, nobody, SETTINGS, uuid.uuid4(), ACTOR, ["S-1"], settled=Settled()
        )


# update_fulfillment_statuses


async def test_marking_fulfillments_shipped_ships_their_sales_on_orders_first(
    pool, orders, session
):
    tenant = uuid.uuid4()
    a, b, c_ = await shipping(pool, orders, session, tenant, 3)
    orders.requests.clear()

    outcome = await usecases.update_fulfillment_statuses(
        pool,
        orders.client(session),
        tenant,
        ACTOR,
        [
            StatusUpdate(str(a.id), "shipped"),
            StatusUpdate(str(b.id), "picking"),
            StatusUpdate(str(c_.id), "shipped"),
        ],
        settled=Settled(),
    )

    assert outcome.refused == []
    assert [(f.id, f.status, f.version) for f in outcome.fulfillments] == [
        (a.id, "shipped", 2),
        (b.id, "picking", 2),
        (c_.id, "shipped", 2),
    ]
    # one ask for the batch, through orders' batch ship only
    assert orders.requests == [("/internal/sales/ship", tenant, [a.sale_id, c_.sale_id])]
    assert orders.sales[(tenant, a.sale_id)].status == "shipped"
    assert orders.sales[(tenant, b.sale_id)].status == "in_fulfillment"
    assert await rows(pool, tenant) == {
        a.sale_id: ("shipped", 2),
        b.sale_id: ("picking", 2),
        c_.sale_id: ("shipped", 2),
    }
    changes = [e for e in await outbox(pool, tenant) if e.type == c.FULFILLMENT_STATUS_CHANGED]
    assert sorted(
        (e.data.sale.sale_id, e.data.previous_status, e.data.status, e.data.sale.status)
        for e in changes
    ) == (
        sorted(
            [
                (a.sale_id, "waiting_for_picking", "shipped", "shipped"),
                (b.sale_id, "waiting_for_picking", "picking", "in_fulfillment"),
                (c_.sale_id, "waiting_for_picking", "shipped", "shipped"),
            ]
        )
    )


async def test_what_cannot_move_is_reported_and_stays_while_the_rest_moves(pool, orders, session):
    tenant, other = uuid.uuid4(), uuid.uuid4()
    canceled, ahead, fine = await shipping(pool, orders, session, tenant, 3)
    [theirs] = await shipping(pool, orders, session, other, 1)
    client = orders.client(session)
    await usecases.update_fulfillment_statuses(
        pool, client, tenant, ACTOR, [StatusUpdate(str(ahead.id), "packed")], settled=Settled()
    )
    orders.sales[(tenant, canceled.sale_id)].status = "canceled"

    outcome = await usecases.update_fulfillment_statuses(
        pool,
        client,
        tenant,
        ACTOR,
        [
            StatusUpdate(str(canceled.id), "shipped"),
            StatusUpdate(str(ahead.id), "picking"),
            StatusUpdate("not-a-uuid", "packed"),
            StatusUpdate(str(theirs.id), "packed"),
            StatusUpdate(str(fine.id), "delivered"),
        ],
        settled=Settled(),
    )

    assert outcome.fulfillments == []
    assert outcome.refused == [
        Refusal("not-a-uuid", "not_found", "No fulfillment 'not-a-uuid'."),
        Refusal(
            str(ahead.id),
            "conflict",
            "A packed fulfillment cannot go back to picking.",
            {"fulfillment_status": "packed"},
        ),
        Refusal(str(theirs.id), "not_found", f"No fulfillment {str(theirs.id)!r}."),
        Refusal(
            str(fine.id),
            "conflict",
            "A waiting_for_picking fulfillment must be shipped before delivered.",
            {"fulfillment_status": "waiting_for_picking"},
        ),
        Refusal(
            str(canceled.id),
            "conflict",
            "The sale cannot ship: The sale is canceled and cannot ship.",
            {"sale_status": "canceled"},
        ),
    ]
    assert await rows(pool, tenant) == {
        canceled.sale_id: ("waiting_for_picking", 1),
        ahead.sale_id: ("packed", 2),
        fine.sale_id: ("waiting_for_picking", 1),
    }
    assert await rows(pool, other) == {theirs.sale_id: ("waiting_for_picking", 1)}


async def test_a_fulfillment_already_there_is_answered_as_it_is(pool, orders, session):
    tenant = uuid.uuid4()
    [f] = await shipping(pool, orders, session, tenant, 1)
    client = orders.client(session)
    [shipped] = (
        await usecases.update_fulfillment_statuses(
            pool, client, tenant, ACTOR, [StatusUpdate(str(f.id), "shipped")], settled=Settled()
        )
    ).fulfillments
    published = len(await outbox(pool, tenant))

    again = await usecases.update_fulfillment_statuses(
        pool, client, tenant, ACTOR, [StatusUpdate(str(f.id), "shipped")], settled=Settled()
    )

    assert again.fulfillments == [shipped] and again.refused == []
    assert len(await outbox(pool, tenant)) == published, "nothing moved, nothing published"


async def test_a_move_writes_nothing_when_orders_cannot_ship(pool, orders, session):
    tenant = uuid.uuid4()
    [f] = await shipping(pool, orders, session, tenant, 1)
    orders.answer_status = 500

    with pytest.raises(OrdersUnavailable, match="orders answered 500 to a shipment"):
        await usecases.update_fulfillment_statuses(
            pool,
            orders.client(session),
            tenant,
            ACTOR,
            [StatusUpdate(str(f.id), "shipped")],
            settled=Settled(),
        )

    assert await rows(pool, tenant) == {f.sale_id: ("waiting_for_picking", 1)}


# get_fulfillment


async def test_get_fulfillment_finds_only_the_tenants_own(pool, orders, session):
    tenant = uuid.uuid4()
    [f] = await shipping(pool, orders, session, tenant, 1)

    assert await usecases.get_fulfillment(pool, tenant, str(f.id)) == f
    for tenant_, asked in ((uuid.uuid4(), str(f.id)), (tenant, "F-none")):
        with pytest.raises(NotFound, match="No fulfillment"):
            await usecases.get_fulfillment(pool, tenant_, asked)


# follow_sales


def sale_event(
    tenant: uuid.UUID, sale: uuid.UUID, sale_id: str, status: str, type_: str = ""
) -> Event[Any]:
    now = utcnow()
    data = c.SaleStatusChanged(
        id=sale,
        sale_id=sale_id,
        status=status,  # type: ignore[arg-type]
        previous_status="pending",
        version=2,
        shop=c.Shop(channel="web", shop_name="t"),
        location_id="wh-freight",
        lines=[c.SaleLine(sku="A", quantity=1)],
        reservation={"lines": [{"sku": "A", "quantity": 1, "is_bulky": True}]},
        created_at=now,
        updated_at=now,
    )
    event = c.make_event(
        source="/orders",
        type=type_ or (c.SALE_CANCELED if status == "canceled" else c.SALE_STATUS_CHANGED),
        tenant_id=tenant,
        subject=f"sale/{sale}",
        data=data,
    )
    return decode_event(event.to_bytes())


async def follow(pool: asyncpg.Pool, batch: list[Event[Any]]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await usecases.follow_sales(conn, SETTINGS, batch)


async def test_follow_sales_gives_a_claimed_sale_its_fulfillment_once(pool):
    tenant, sale = uuid.uuid4(), uuid.uuid4()
    claimed = sale_event(tenant, sale, "S-claimed", "in_fulfillment")

    await follow(pool, [claimed, claimed])
    await follow(pool, [claimed])

    assert await rows(pool, tenant) == {"S-claimed": ("waiting_for_picking", 1)}
    [created] = await outbox(pool, tenant)
    assert created.type == c.FULFILLMENT_CREATED
    assert created.dataversion == "2"
    assert (created.data.sale.id, created.data.shipping_provider, created.data.is_bulky) == (
        sale,
        c.ShippingProvider(name="Fulfil Freight", shipping_provider_id="fulfil-freight"),
        True,
    )


async def test_follow_sales_finishes_shipments_and_cancellations(pool, orders, session):
    tenant = uuid.uuid4()
    to_ship, to_cancel, shipped = await shipping(pool, orders, session, tenant, 3)
    await usecases.update_fulfillment_statuses(
        pool,
        orders.client(session),
        tenant,
        ACTOR,
        [StatusUpdate(str(shipped.id), "shipped")],
        settled=Settled(),
    )

    await follow(
        pool,
        [
            sale_event(tenant, to_ship.sale, to_ship.sale_id, "shipped"),
            sale_event(tenant, to_cancel.sale, to_cancel.sale_id, "shipped"),
            sale_event(tenant, to_cancel.sale, to_cancel.sale_id, "canceled"),  # its last word
            sale_event(tenant, shipped.sale, shipped.sale_id, "canceled"),  # too late: left alone
        ],
    )

    assert await rows(pool, tenant) == {
        to_ship.sale_id: ("shipped", 2),
        to_cancel.sale_id: ("canceled", 2),
        shipped.sale_id: ("shipped", 2),
    }
    changes = [
        (e.data.sale.sale_id, e.data.status)
        for e in await outbox(pool, tenant)
        if e.type == c.FULFILLMENT_STATUS_CHANGED
    ]
    assert sorted(changes) == sorted(
        [
            (shipped.sale_id, "shipped"),
            (to_ship.sale_id, "shipped"),
            (to_cancel.sale_id, "canceled"),
        ]
    )


# split sales: one fulfillment per location the sale ships from

DEPOT = {"name": "Depot", "address": {"address1": "1 Quay", "city": "Oslo"}}


def split_reservation(bulky_elsewhere: bool = True) -> dict[str, Any]:
    """A routed sale's reservation as stock publishes it: most units at wh-1, one line at
    wh-freight (the other location), which stock names."""
    return {
        "id": str(uuid.uuid4()),
        "location_id": "wh-1",
        "location": DEPOT,
        "status": "active",
        "lines": [
            {"sku": "A", "quantity": 2, "stock_record_id": str(uuid.uuid4())},
            {
                "sku": "A",
                "quantity": 1,
                "stock_record_id": str(uuid.uuid4()),
                "location_id": "wh-freight",
                "is_bulky": bulky_elsewhere,
            },
        ],
        "other_locations": [
            {"location_id": "wh-freight", "location": {"name": "Freight yard", "address": None}}
        ],
    }


async def test_init_shipping_gives_a_split_sale_one_fulfillment_per_location(pool, orders, session):
    tenant = uuid.uuid4()
    split = orders.add(tenant, location_id=None, reservation=split_reservation())
    single = orders.add(tenant)

    outcome = await usecases.init_shipping(
        pool,
        orders.client(session),
        SETTINGS,
        tenant,
        ACTOR,
        [split.sale_id, single.sale_id],
        settled=Settled(),
    )

    assert outcome.refused == []
    # one list; the split sale's fulfillments together, its reservation's own location first
    assert [
        (f.sale_id, f.location, f.location_name, f.part, f.shipping_provider, f.is_bulky)
        for f in outcome.fulfillments
    ] == [
        (split.sale_id, "wh-1", "Depot", 0, "fulfil-post", False),
        (split.sale_id, "wh-freight", "Freight yard", 1, "fulfil-freight", True),
        (single.sale_id, "wh-1", "wh-1", 0, "fulfil-post", False),
    ]
    first, second, _ = outcome.fulfillments
    assert first.tracking_number.startswith("FP") and second.tracking_number.startswith("FF")
    assert first.id != second.id and first.fulfillment_id != second.fulfillment_id
    assert {f.status for f in outcome.fulfillments} == {"waiting_for_picking"}
    # each part's label sends from its own location
    assert (await usecases.label_of(pool, tenant, str(first.id))).sender.name == "Depot"
    assert (await usecases.label_of(pool, tenant, str(second.id))).sender.name == "Freight yard"
    created = [e for e in await outbox(pool, tenant) if e.type == c.FULFILLMENT_CREATED]
    assert sorted((e.data.sale.sale_id, e.data.location.location_id) for e in created) == sorted(
        [(split.sale_id, "wh-1"), (split.sale_id, "wh-freight"), (single.sale_id, "wh-1")]
    )

    orders.requests.clear()
    again = await usecases.init_shipping(
        pool,
        orders.client(session),
        SETTINGS,
        tenant,
        ACTOR,
        [single.sale_id, split.sale_id],
        settled=Settled(),
    )
    assert again.fulfillments == [outcome.fulfillments[2], *outcome.fulfillments[:2]]
    assert orders.requests == [], "a sale with its fulfillments is not claimed again"


async def test_the_request_and_the_consumer_agree_on_one_fulfillment_per_part(
    pool, orders, session
):
    tenant = uuid.uuid4()
    split = orders.add(tenant, location_id=None, reservation=split_reservation())
    # the consumer saw the claim first (the request died after orders answered, say) ...
    claimed = c.SaleStatusChanged.model_validate(
        {**split.snapshot(), "status": "in_fulfillment", "previous_status": "pending"}
    )
    event = c.make_event(
        source="/orders",
        type=c.SALE_STATUS_CHANGED,
        tenant_id=tenant,
        subject=f"sale/{split.id}",
        data=claimed,
    )
    await follow(pool, [decode_event(event.to_bytes())] * 2)
    followed = await store_parts(pool, tenant, split.sale_id)
    assert [f.location for f in followed] == ["wh-1", "wh-freight"]

    # ... and the same claim, answered to a request, finds them and adds none
    async with pool.acquire() as conn, conn.transaction():
        found = await usecases._ensure_fulfillments(conn, SETTINGS, tenant, [claimed])
    assert found == {split.sale_id: followed}
    assert len(await outbox(pool, tenant)) == 2


async def store_parts(pool: asyncpg.Pool, tenant: uuid.UUID, sale_id: str) -> list:
    async with pool.acquire() as conn:
        return (await store.by_sale_ids(conn, tenant, [sale_id]))[sale_id]


async def test_marking_a_part_shipped_ships_that_part_of_the_sale(pool, orders, session):
    tenant = uuid.uuid4()
    split = orders.add(tenant, location_id=None, reservation=split_reservation())
    here, there = (
        await usecases.init_shipping(
            pool,
            orders.client(session),
            SETTINGS,
            tenant,
            ACTOR,
            [split.sale_id],
            settled=Settled(),
        )
    ).fulfillments
    client = orders.client(session)

    first = await usecases.update_fulfillment_statuses(
        pool, client, tenant, ACTOR, [StatusUpdate(str(there.id), "shipped")], settled=Settled()
    )

    assert [(f.id, f.status) for f in first.fulfillments] == [(there.id, "shipped")]
    assert orders.parts_asked == [[(split.sale_id, "wh-freight")]]
    assert orders.sales[(tenant, split.sale_id)].status == "in_fulfillment", "a part is left"
    assert await rows_by_location(pool, tenant) == {
        "wh-1": ("waiting_for_picking", 1),
        "wh-freight": ("shipped", 2),
    }

    last = await usecases.update_fulfillment_statuses(
        pool, client, tenant, ACTOR, [StatusUpdate(str(here.id), "shipped")], settled=Settled()
    )

    assert [(f.id, f.status) for f in last.fulfillments] == [(here.id, "shipped")]
    assert orders.parts_asked[-1] == [(split.sale_id, "wh-1")]
    assert orders.sales[(tenant, split.sale_id)].status == "shipped"


async def test_a_wave_ships_both_parts_of_a_sale_in_one_ask(pool, orders, session):
    tenant = uuid.uuid4()
    split = orders.add(tenant, location_id=None, reservation=split_reservation())
    here, there = (
        await usecases.init_shipping(
            pool,
            orders.client(session),
            SETTINGS,
            tenant,
            ACTOR,
            [split.sale_id],
            settled=Settled(),
        )
    ).fulfillments

    outcome = await usecases.update_fulfillment_statuses(
        pool,
        orders.client(session),
        tenant,
        ACTOR,
        [StatusUpdate(str(here.id), "shipped"), StatusUpdate(str(there.id), "shipped")],
        settled=Settled(),
    )

    assert outcome.refused == []
    assert [(f.id, f.status) for f in outcome.fulfillments] == [
        (here.id, "shipped"),
        (there.id, "shipped"),
    ]
    assert orders.parts_asked == [[(split.sale_id, "wh-1"), (split.sale_id, "wh-freight")]]
    assert orders.sales[(tenant, split.sale_id)].status == "shipped"


async def test_the_parts_of_a_canceled_split_sale_are_refused_and_stay(pool, orders, session):
    tenant = uuid.uuid4()
    split = orders.add(tenant, location_id=None, reservation=split_reservation())
    here, there = (
        await usecases.init_shipping(
            pool,
            orders.client(session),
            SETTINGS,
            tenant,
            ACTOR,
            [split.sale_id],
            settled=Settled(),
        )
    ).fulfillments
    orders.sales[(tenant, split.sale_id)].status = "canceled"

    outcome = await usecases.update_fulfillment_statuses(
        pool,
        orders.client(session),
        tenant,
        ACTOR,
        [StatusUpdate(str(there.id), "shipped"), StatusUpdate(str(here.id), "packed")],
        settled=Settled(),
    )

    assert [(f.id, f.status) for f in outcome.fulfillments] == [(here.id, "packed")]
    assert outcome.refused == [
        Refusal(
            str(there.id),
            "conflict",
            "The sale cannot ship: The sale is canceled and cannot ship.",
            {"sale_status": "canceled"},
        )
    ]
    # and the sale's cancellation, when its event comes, cancels every part
    await follow(pool, [sale_event(tenant, split.id, split.sale_id, "canceled")])
    assert await rows_by_location(pool, tenant) == {
        "wh-1": ("canceled", 3),
        "wh-freight": ("canceled", 2),
    }


async def test_a_split_sale_shipped_moves_every_part_its_requests_left(pool, orders, session):
    tenant = uuid.uuid4()
    split = orders.add(tenant, location_id=None, reservation=split_reservation())
    here, _ = (
        await usecases.init_shipping(
            pool,
            orders.client(session),
            SETTINGS,
            tenant,
            ACTOR,
            [split.sale_id],
            settled=Settled(),
        )
    ).fulfillments
    await usecases.update_fulfillment_statuses(
        pool,
        orders.client(session),
        tenant,
        ACTOR,
        [StatusUpdate(str(here.id), "shipped")],
        settled=Settled(),
    )

    # the last part was shipped on orders, and fulfilment died before recording it
    await follow(pool, [sale_event(tenant, split.id, split.sale_id, "shipped")])

    assert await rows_by_location(pool, tenant) == {
        "wh-1": ("shipped", 2),
        "wh-freight": ("shipped", 2),
    }


async def rows_by_location(pool: asyncpg.Pool, tenant: uuid.UUID) -> dict[str, tuple[str, int]]:
    found = await pool.fetch(
        "SELECT location, status, version FROM fulfilment.fulfillments WHERE tenant_id = $1",
        tenant,
    )
    return {r["location"]: (r["status"], r["version"]) for r in found}
