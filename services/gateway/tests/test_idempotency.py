import pytest

from fulfilkit.errors import Conflict
from fulfilkit.http.problems import Problem
from fulfilkit.idempotency import check_key as check_idempotency_key
from gateway.checks import problem_of
from gateway.domain import (
    IdempotencyRecord,
    InProgress,
    RequestFingerprint,
    StoredResponse,
    replay,
    with_public_origin,
)
from gateway.forwarding import forwarded_headers


def test_the_fingerprint_covers_method_path_query_and_body() -> None:
    base = RequestFingerprint.of("post", "/api/v1/sales", "", b'{"a":1}')
    assert base == RequestFingerprint.of("POST", "/api/v1/sales", "", b'{"a":1}')
    assert base.method == "POST" and len(base.body_sha256) == 32
    for other in (
        RequestFingerprint.of("POST", "/api/v1/sales", "", b'{"a":2}'),
        RequestFingerprint.of("POST", "/api/v1/sales/cancel", "", b'{"a":1}'),
        RequestFingerprint.of("POST", "/api/v1/sales", "wait=0", b'{"a":1}'),
        RequestFingerprint.of("PUT", "/api/v1/sales", "", b'{"a":1}'),
    ):
        assert other != base


def test_a_completed_record_replays_its_response() -> None:
    fingerprint = RequestFingerprint.of("POST", "/api/v1/sales", "", b"{}")
    stored = StoredResponse(201, {"Location": "/api/v1/sales/1"}, b'{"id":1}')
    response = replay(IdempotencyRecord(fingerprint, stored), fingerprint)
    assert response.status_code == 201 and response.body == b'{"id":1}'
    assert response.headers == {"Location": "/api/v1/sales/1", "idempotent-replayed": "true"}


def test_a_different_request_with_the_same_key_is_a_conflict() -> None:
    first = RequestFingerprint.of("POST", "/api/v1/sales", "", b"{}")
    record = IdempotencyRecord(first, StoredResponse(201, {}, b""))
    with pytest.raises(Conflict) as raised:
        replay(record, RequestFingerprint.of("POST", "/api/v1/sales", "", b"{ }"))
    assert not isinstance(raised.value, InProgress)
    assert raised.value.code == "conflict" and "different request" in raised.value.detail


def test_a_record_still_in_progress_is_a_conflict() -> None:
    fingerprint = RequestFingerprint.of("POST", "/api/v1/sales", "", b"{}")
    with pytest.raises(InProgress) as raised:
        replay(IdempotencyRecord(fingerprint, None), fingerprint)
    assert raised.value.code == "conflict" and "in progress" in raised.value.detail
    assert problem_of(raised.value).headers == {"Retry-After": "1"}


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_idempotency_keys_are_1_to_255_characters(key: str) -> None:
    with pytest.raises(Problem):
        check_idempotency_key(key)
    check_idempotency_key("k" * 255)


SERVICE_LINK = '<http://127.0.0.1:8001/api/v1/sales?offset=100>; rel="next"'


@pytest.mark.parametrize("base", ["", "https://api.example.com", r"\g<0>", r"a\1"])
def test_links_get_the_configured_origin_or_none_and_it_is_never_a_template(base: str) -> None:
    assert with_public_origin(SERVICE_LINK, base) == f'<{base}/api/v1/sales?offset=100>; rel="next"'


def test_forwarded_headers_are_the_chosen_ones_as_utf_8_or_refused() -> None:
    raw = [(b"If-Match", '"é"'.encode()), (b"Cookie", b"a=b"), (b"Idempotency-Key", b"k1")]
    assert forwarded_headers(raw) == {"if-match": '"é"', "idempotency-key": "k1"}
    with pytest.raises(Problem) as raised:
        forwarded_headers([(b"Prefer", b"\xe9")])
    assert raised.value.status == 400 and "prefer" in raised.value.detail
