"""The console's session rules, without I/O: ids, tokens, origins, where a form may lead."""

from gateway.console.sessions import (
    admin_fingerprint,
    hash_id,
    local_path,
    new_session,
    same_origin,
    same_token,
)


def test_a_new_session_keeps_only_the_hash_of_its_id_and_has_its_own_csrf_token():
    first, second = new_session(), new_session()
    assert first.id_hash == hash_id(first.id) and first.id.encode() not in first.id_hash
    assert len(first.id) >= 43 and len(first.csrf_token) >= 43
    assert first.id != second.id and first.csrf_token != second.csrf_token


def test_the_admin_fingerprint_changes_with_the_token_and_is_not_the_token():
    assert admin_fingerprint("a" * 40) == admin_fingerprint("a" * 40)
    assert admin_fingerprint("a" * 40) != admin_fingerprint("b" * 40)
    assert b"a" * 40 not in admin_fingerprint("a" * 40)


def test_tokens_compare_whole():
    assert same_token("abc", "abc")
    assert not same_token(None, "abc")
    assert not same_token("", "abc")
    assert not same_token("abcd", "abc")


def test_a_form_comes_from_the_same_origin_or_says_nothing():
    host = "console.example:8000"
    assert same_origin({"sec-fetch-site": "same-origin", "origin": f"https://{host}"}, host)
    assert same_origin({}, host)  # neither header: the CSRF token alone decides
    assert not same_origin({"sec-fetch-site": "cross-site"}, host)
    assert not same_origin({"sec-fetch-site": "same-site"}, host)
    assert not same_origin({"origin": "https://evil.example"}, host)
    assert not same_origin({"origin": "null"}, host)


def test_a_form_leads_back_only_into_the_console():
    assert local_path("/console/sales/SO-1?done=x", "/d") == "/console/sales/SO-1?done=x"
    for elsewhere in (
        "https://evil.example/",
        "//evil.example/console/",
        "/api/v1/sales",
        "/console/\\evil",
        None,
        "",
    ):
        assert local_path(elsewhere, "/d") == "/d"
