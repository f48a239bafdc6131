"""Which operations are lists (their GET takes `pageNumber`): the fuzzer lets them refuse
both paging styles at once with 400."""

from tests.fuzz.config import paged_lists

PAGE = {"name": "pageNumber", "in": "query", "schema": {"type": "integer"}}


def test_only_a_get_taking_page_number_is_a_list() -> None:
    document = {
        "paths": {
            "/api/v1/sales": {"get": {"parameters": [PAGE]}, "post": {}},
            "/api/v1/sales/{sale_id}": {"get": {"parameters": []}},
            "/api/v1/locations": {"post": {"parameters": [PAGE]}},
            "/api/v1/products": {"get": {"parameters": [{**PAGE, "in": "header"}]}},
            "/api/v1/webhooks/endpoints/{endpoint_id}/deliveries": {"get": {"parameters": [PAGE]}},
        }
    }

    assert paged_lists(document) == [
        "/api/v1/sales",
        "/api/v1/webhooks/endpoints/{endpoint_id}/deliveries",
    ]
