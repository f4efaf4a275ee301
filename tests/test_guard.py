"""The service's request guard, without a server: which bodies it refuses and what it publishes."""

from __future__ import annotations

import pytest

from service.guard import MAX_JSON_DEPTH, Routes, error_schema_published, json_problem


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{", "unexpected end"),
        (b"\x00", "unexpected character"),
        (b"[\xff\xfe]", "not UTF-8"),
        (b"[" * 1500 + b"]" * 1500, "nested deeper"),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "nested deeper"),
        (b"[" + b"9" * 5000 + b"]", "more digits"),
    ],
)
def test_bodies_no_record_parser_can_take_are_named(body, says):
    """Check each kind of unusable body gets a reason (each was a 500 from /predict_batch)."""
    assert says in json_problem(body)


@pytest.mark.parametrize(
    "body",
    [b"", b"{}", b'{"tenure_months": NaN}', b'{"x": 1e400}', b'[{"a": 1}]', b'{"id": 100000000000000000000000000000}'],
)
def test_bodies_the_schema_should_judge_pass(body):
    """Check NaN literals, overflowing floats, big integers and empty bodies pass through, for the schema to
    name the field."""
    assert json_problem(body) is None


def test_routes_know_the_static_files_but_not_other_paths(tmp_path):
    """Check only the docs' real static files and the listed paths are known."""
    (tmp_path / "swagger-ui.css").write_text("")
    routes = Routes.of(api=["/predict"], other=["/metadata"], static_folder=tmp_path)
    assert routes.known("/predict") and routes.known("/static_content/swagger-ui.css") and routes.known("/readyz")
    assert not routes.known("/static_content/x.css") and not routes.known("/predict/") and not routes.known("/a")
    assert routes.is_open("/metrics") and not routes.is_open("/predict")


def test_the_published_schema_describes_the_error_body():
    """Check BentoML's string ``detail`` becomes the list the service sends, with the guard's statuses."""
    document = {
        "components": {"schemas": {"InvalidArgument": {"properties": {"detail": {"type": "string"}}}}},
        "paths": {"/predict": {"post": {"responses": {"200": {}}}}},
    }
    published = error_schema_published(document)
    assert published["components"]["schemas"]["InvalidArgument"]["properties"]["detail"]["type"] == "array"
    assert {"200", "401", "408", "413", "415"} <= set(published["paths"]["/predict"]["post"]["responses"])
