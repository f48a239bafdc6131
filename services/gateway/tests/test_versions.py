"""Which API version a request asks for, from the three headers integrators send."""

import pytest

from gateway.domain import (
    CURRENT_VERSION,
    UnsupportedVersion,
    requested_version,
    served_version,
    version_named,
)


@pytest.mark.parametrize("value", ["v1", "V1", "1", " 1 ", "01"])
def test_each_spelling_of_version_1_names_it(value: str) -> None:
    assert version_named(value) == "v1"


@pytest.mark.parametrize("value", ["", "v2", "2", "0", "v", "1.0", "v1.1", "latest", "v-1", "१"])
def test_anything_else_names_no_version(value: str) -> None:
    assert version_named(value) is None


@pytest.mark.parametrize(
    "sent",
    [
        [("accept-version", "1")],
        [("x-api-version", "v1")],
        [("x-oakra-api-version", "v1")],
        [("accept-version", "1"), ("x-api-version", "v1"), ("x-oakra-api-version", "V1")],
    ],
)
def test_every_version_header_is_read(sent: list[tuple[str, str]]) -> None:
    assert requested_version(sent) == "v1"


def test_no_version_header_means_the_current_version() -> None:
    assert requested_version([("accept", "application/json"), ("version", "v9")]) == "v1"
    assert CURRENT_VERSION == "v1"


def test_an_unknown_version_is_refused_naming_the_header_and_the_supported_ones() -> None:
    with pytest.raises(UnsupportedVersion) as refused:
        requested_version([("x-api-version", "v1"), ("accept-version", "2")])

    detail = str(refused.value)
    assert detail.startswith("Unknown API version '2' in Accept-Version; supported: v1 ")
    assert "`Accept-Version: 1`" in detail and "`X-OAKRA-API-VERSION: v1`" in detail


def test_the_answer_speaks_the_current_version_when_the_request_named_a_wrong_one() -> None:
    assert served_version([("accept-version", "7")]) == "v1"
    assert served_version([]) == "v1"
    assert served_version([("x-oakra-api-version", "v1")]) == "v1"
