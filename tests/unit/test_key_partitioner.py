"""The producers' partitioner picks the partition aiokafka's (and Java's) default one picks, for
every key: a key's events stay on one partition, in order, whoever produced them."""

import random
import uuid

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from fulfilkit import contracts as c
from fulfilkit.kafka import KeyPartitioner, make_producer, murmur2


def keys() -> list[bytes]:
    rng = random.Random(18)
    platform = [
        k.encode()
        for tenant in (uuid.UUID(int=rng.getrandbits(128)) for _ in range(20))
        for k in (
            c.sale_key(tenant, uuid.UUID(int=rng.getrandbits(128))),
            c.stock_level_key(tenant, "wh-1", f"SKU-{rng.randrange(10_000)}"),
            c.product_key(tenant, "é-sku"),
        )
    ]
    # many keys of one tenant, of one length and of others: the remembered head of a key
    tenant = uuid.UUID(int=rng.getrandbits(128))
    one_tenant = [
        c.sale_key(tenant, uuid.UUID(int=rng.getrandbits(128))).encode() for _ in range(50)
    ] + [c.stock_level_key(tenant, "wh-1", f"SKU-{n}").encode() for n in range(0, 10_000, 97)]
    # every length from 0 to 60 (each tail of 0-3 bytes), bytes of every value; heads shared
    raw = [bytes(rng.randrange(256) for _ in range(n)) for n in range(61) for _ in range(25)]
    shared = [b"h" * 40 + bytes(rng.randrange(256) for _ in range(n)) for n in range(30)]
    return platform + one_tenant + raw + shared + [b"", b"\x00", b"\xff" * 7, b"a" * 1001]


def test_murmur2_is_aiokafkas():
    for key in keys():
        assert murmur2(key) == aiokafka_murmur2(key), key


def test_partition_is_the_default_partitioners_for_every_count():
    ours, theirs = KeyPartitioner(), DefaultPartitioner()
    for count in (1, 2, 3, 8, 12, 64):
        partitions = list(range(count))
        for key in keys():
            expected = theirs(key, partitions, partitions)
            assert ours(key, partitions, partitions) == expected
            assert ours(key, partitions, partitions) == expected  # remembered, still right


def test_remembering_a_bounded_number_of_keys():
    ours, theirs = KeyPartitioner(remember=10), DefaultPartitioner()
    partitions = list(range(8))
    for key in keys():
        assert ours(key, partitions, partitions) == theirs(key, partitions, partitions)
        assert len(ours._hashes) <= 10


def test_a_record_without_a_key_goes_to_an_available_partition():
    ours = KeyPartitioner()
    assert {ours(None, [0, 1, 2, 3], [2]) for _ in range(20)} == {2}
    assert ours(None, [0, 1, 2, 3], []) in {0, 1, 2, 3}


async def test_the_platforms_producers_use_it():
    producer = make_producer("127.0.0.1:9")  # not started: nothing connects
    assert isinstance(producer._partitioner, KeyPartitioner)
