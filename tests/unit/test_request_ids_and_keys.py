"""Pure pieces of request handling: request ids, idempotency keys and fingerprints."""

import pytest

from fulfilkit.http.middleware import request_id_of
from fulfilkit.http.problems import Problem
from fulfilkit.idempotency import Answer, check_key, fingerprint


@pytest.mark.parametrize("given", [b"req-1", b"a" * 128, b"~!#$%&'*+.^_`|"])
def test_a_usable_request_id_is_kept(given: bytes) -> None:
    assert request_id_of(given) == given.decode()


@pytest.mark.parametrize(
    "given", [None, b"", b"\xff\xfe", b"a" * 129, b"two words", "é".encode(), b"tab\there"]
)
def test_anything_else_gets_a_fresh_id(given: bytes | None) -> None:
    fresh = request_id_of(given)
    assert len(fresh) == 32 and int(fresh, 16) >= 0
    assert fresh != request_id_of(given)


@pytest.mark.parametrize("key", ["", "k" * 256, "with space", "é", "tab\t"])
def test_an_idempotency_key_is_1_to_255_visible_ascii_characters(key: str) -> None:
    with pytest.raises(Problem) as raised:
        check_key(key)
    assert raised.value.status == 400


def test_a_valid_key_is_returned_as_given() -> None:
    assert check_key("k" * 255) == "k" * 255


def test_the_fingerprint_covers_method_target_and_body() -> None:
    base = fingerprint("post", "/api/v1/stock/transfers", b"{}")
    assert base == fingerprint("POST", "/api/v1/stock/transfers", b"{}")
    assert (
        len(
            {
                base,
                fingerprint("POST", "/api/v1/stock/transfers", b"{ }"),
                fingerprint("POST", "/api/v1/stock/transfers?x=1", b"{}"),
                fingerprint("PUT", "/api/v1/stock/transfers", b"{}"),
                fingerprint("POST", "/api/v1/stock/transfer", b"s{}"),
            }
        )
        == 5
    )


def test_an_answer_replays_with_the_replayed_mark() -> None:
    answer = Answer(201, b'{"a":1}', {"Content-Type": "application/json"})
    first, replayed = answer.response(), answer.response(replayed=True)
    assert (
        (first.status_code, first.body)
        == (replayed.status_code, replayed.body)
        == (201, b'{"a":1}')
    )
    assert "idempotent-replayed" not in first.headers
    assert replayed.headers["idempotent-replayed"] == "true"
