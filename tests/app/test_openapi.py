"""The OpenAPI document describes the service as it is with its settings: the prediction's
body, one error body (`ErrorOut`) for every error a route documents, the security of the
mode, the timestamp's forms and the configured limits, an example for every route.
(`test_schemathesis` holds the running service to the whole document.)"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from app.main import create_app
from app.schemas import TIMESTAMP_PATTERN, ErrorOut, PredictionOut
from app.settings import Settings
from model.timestamps import END, parse_timestamp


def _responses(doc: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    return [(path, method, code, response)
            for path, operations in doc["paths"].items()
            for method, operation in operations.items()
            for code, response in operation["responses"].items()]


def _schema_ref(response: dict[str, Any]) -> str | None:
    return response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")


def test_every_error_response_is_the_service_error_body(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert doc["components"]["schemas"]["ErrorOut"]["required"] == ["error", "message"]
    for path, method, code, response in _responses(doc):
        if int(code) >= 400 and not (path == "/readyz" and code == "503"):
            assert _schema_ref(response) == "#/components/schemas/ErrorOut", (path, method, code)
    for path, operations in doc["paths"].items():
        if path.startswith("/v1/"):
            for method, operation in operations.items():
                missing = {"413", "503"} - set(operation["responses"])
                assert not missing, (path, method, missing)
    admin = doc["paths"]["/v1/admin/reload"]["post"]["responses"]
    assert {"401", "403"} <= set(admin)


def _doc(make_settings: Callable[..., Settings], **settings: Any) -> dict[str, Any]:
    return create_app(make_settings(**settings), CollectorRegistry()).openapi()


def _security(doc: dict[str, Any]) -> dict[str, list[str]]:
    """Operation -> the schemes it requires; one requiring any, and only such, documents 401."""
    found = {}
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            schemes = sorted(n for r in operation.get("security", []) for n in r)
            assert bool(schemes) == ("401" in operation["responses"]), (path, method)
            found[f"{method.upper()} {path}"] = schemes
    return found


def test_security_is_declared_as_the_mode_checks_it(
    make_settings: Callable[..., Settings],
) -> None:
    open_doc = _doc(make_settings)
    assert {op: s for op, s in _security(open_doc).items() if s} == {
        "POST /v1/admin/reload": ["AdminKey"]}
    assert set(open_doc["components"]["securitySchemes"]) == {"AdminKey"}
    keyed = _security(_doc(make_settings, api_keys="sk-1"))
    storefront = {op for op, s in keyed.items() if s == ["StorefrontKey"]}
    assert storefront == {"POST /v1/events", "GET /v1/users/{user_id}/prediction",
                          "DELETE /v1/users/{user_id}", "POST /v1/predict", "GET /v1/model",
                          "GET /v1/model/live"}
    assert keyed["POST /v1/admin/reload"] == ["AdminKey"]
    assert keyed["GET /healthz"] == keyed["GET /readyz"] == keyed["GET /metrics"] == []
    assert _security(_doc(make_settings, metrics_key="mk-1"))["GET /metrics"] == ["MetricsKey"]


def test_ids_and_batches_carry_the_configured_limits(
    make_settings: Callable[..., Settings],
) -> None:
    doc = _doc(make_settings, max_id_length=64, max_batch_events=50)
    event = doc["components"]["schemas"]["EventIn"]["properties"]
    assert event["user_id"]["maxLength"] == event["item_id"]["maxLength"] == 64
    for path in ("/v1/users/{user_id}/prediction", "/v1/users/{user_id}"):
        (user_id,) = [p for o in doc["paths"][path].values() for p in o["parameters"]
                      if p["name"] == "user_id"]
        assert user_id["schema"]["maxLength"] == 64
        assert user_id["schema"]["pattern"] == event["user_id"]["pattern"]
    assert doc["components"]["schemas"]["EventsIn"]["properties"]["events"]["maxItems"] == 50


def test_the_timestamp_documents_its_forms_and_bounds(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    (timestamp, _) = doc["components"]["schemas"]["EventIn"]["properties"]["timestamp"]["anyOf"]
    number, string = timestamp["anyOf"]
    assert number == {"type": "number", "minimum": 0.0, "exclusiveMaximum": END}
    assert string == {"type": "string", "pattern": TIMESTAMP_PATTERN}
    assert "ISO 8601" in timestamp["description"] and "2100-01-01" in timestamp["description"]
    for example in timestamp["examples"]:
        parse_timestamp(example)


_TIMESTAMP_CHARS = st.sampled_from("0123456789-:.,+eETtZzUC ")


@given(st.text(_TIMESTAMP_CHARS, max_size=30) | st.from_regex(TIMESTAMP_PATTERN))
def test_every_timestamp_the_service_reads_fits_the_pattern(text: str) -> None:
    """The pattern holds every string the rule reads (so no string outside it is accepted);
    the strings in it that the rule refuses are the ones the description names."""
    try:
        parse_timestamp(text)
    except ValueError:
        return
    assert re.search(TIMESTAMP_PATTERN, text), text


def test_every_route_has_request_and_answer_examples(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    models = {(r.path_format, m.lower()): r.response_model for r in client.app.routes
              if isinstance(r, APIRoute) for m in r.methods or ()}
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            (content,) = operation["responses"]["200"]["content"].values()
            assert "example" in content, (path, method)
            model = models.get((path, method))
            if isinstance(model, type) and issubclass(model, BaseModel):
                model.model_validate(content["example"])
            for parameter in operation.get("parameters", []):
                assert "example" in parameter or parameter["name"] == "authorization"
            if "requestBody" in operation:
                (body,) = operation["requestBody"]["content"].values()
                assert _examples_of(doc, body["schema"]), (path, method)
    ErrorOut.model_validate(doc["components"]["schemas"]["ErrorOut"]["examples"][0])


def _examples_of(doc: dict[str, Any], schema: dict[str, Any]) -> list[Any]:
    """The examples of a body schema: its own, or those of each schema it refers to."""
    if "$ref" in schema:
        return _examples_of(doc, doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]])
    found = list(schema.get("examples", []))
    for alternative in schema.get("oneOf", schema.get("anyOf", [])):
        found += _examples_of(doc, alternative)
    return found


def test_the_prediction_is_documented_as_its_model(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    ok = doc["paths"]["/v1/users/{user_id}/prediction"]["get"]["responses"]["200"]
    assert _schema_ref(ok) == "#/components/schemas/PredictionOut"
    answer = client.get("/v1/users/openapi-u1/prediction")
    assert answer.status_code == 200
    PredictionOut.model_validate(answer.json())
    required = {n for n, f in PredictionOut.model_fields.items() if f.is_required()}
    assert required <= set(answer.json()) <= set(PredictionOut.model_fields)


def test_documented_error_answers_parse_as_error_out(client: TestClient) -> None:
    """A 422 from the body, one from the query and a 404 all have the documented shape."""
    answers = [
        client.post("/v1/events", json={"user_id": "u", "behavior": "jump"}),
        client.get("/v1/users/u/prediction?top_k=0"),
        client.get("/v1/no-such-route"),
    ]
    assert [a.status_code for a in answers] == [422, 422, 404]
    for answer in answers:
        ErrorOut.model_validate(answer.json())
        assert {"error", "message"} <= set(answer.json()) <= set(ErrorOut.model_fields)
