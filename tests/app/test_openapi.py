"""The OpenAPI document describes the answers the service really sends: the prediction's
body, and one error body (`ErrorOut`) for every error a route documents."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from app.schemas import ErrorOut, PredictionOut


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
                missing = {"401", "413", "503"} - set(operation["responses"])
                assert not missing, (path, method, missing)
    admin = doc["paths"]["/v1/admin/reload"]["post"]["responses"]
    assert {"401", "403"} <= set(admin)


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
