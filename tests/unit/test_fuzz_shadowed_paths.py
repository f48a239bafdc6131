"""Which literal paths of the document a template matches too (their method checks are off)."""

from tests.fuzz.config import shadowed_paths


def test_a_literal_path_a_template_matches_is_shadowed() -> None:
    document = {
        "paths": {
            "/api/v1/sales": {},
            "/api/v1/sales/{sale_id}": {},
            "/api/v1/sales/batch": {},
            "/api/v1/sales/batch/extra": {},
            "/api/v1/stock/records/{id}/status": {},
            "/api/v1/stock/records/all/status": {},
            "/api/v1/stock/records/all/other": {},
        }
    }

    assert shadowed_paths(document) == ["/api/v1/sales/batch", "/api/v1/stock/records/all/status"]
