"""Example answers of the API, for the OpenAPI document (`app.openapi`): one per route.

Taken from the demo model's real answers (rounded) to the request examples of the schemas;
`tests/app/test_openapi.py` checks each against its route's response model.
"""

from __future__ import annotations

from typing import Any

from app.routes.users import PREDICTION_PATH

USER_ID = "u-1001"
VERSION = "20240501T120000Z-639591fb"

PREDICTION: dict[str, Any] = {
    "user_id": USER_ID,
    "model_version": VERSION,
    "cold_start": False,
    "window_length": 2,
    "next_behavior": {"view": 0.4412, "fav": 0.0031, "cart": 0.0107, "buy": 0.5450},
    "purchase_probability": 0.8241,
    "return_probability": 0.7357,
    "horizon_seconds": 86400,
    "top_items": [{"id": "sku-42", "score": 0.2356}, {"id": "107860", "score": 0.0200}],
    "top_categories": [{"id": "shoes", "score": 0.7472}, {"id": "1131", "score": 0.0372}],
    "anomaly": {"surprise": 1.5912, "percentile": 0.0121},
    "explanation": [
        {"position": 1, "item_id": "sku-42", "category_id": "shoes", "behavior": "cart",
         "timestamp": 1714564860.0, "contribution": 0.1480},
        {"position": 0, "item_id": "sku-42", "category_id": "shoes", "behavior": "view",
         "timestamp": 1714564800.0, "contribution": -0.0058},
    ],
}
_PLAIN_PREDICTION = {k: v for k, v in PREDICTION.items() if k != "explanation"}

# (path, method) -> the body of its 200 answer
ANSWERS: dict[tuple[str, str], Any] = {
    ("/v1/events", "post"): {
        "accepted": 1, "duplicates": 0,
        "users": [{"user_id": USER_ID, "added": 1, "duplicates": 0, "window_length": 2}],
    },
    (PREDICTION_PATH, "get"): PREDICTION,
    ("/v1/users/{user_id}", "delete"): {"user_id": USER_ID, "deleted": True},
    ("/v1/predict", "post"): {"predictions": [_PLAIN_PREDICTION | {"user_id": "what-if-1"}]},
    ("/v1/model", "get"): {
        "model_version": VERSION, "trained_at": "2024-05-01T12:00:00+00:00",
        "horizon_seconds": 86400, "return_gap_seconds": 1800, "window_len": 20,
        "behaviors": ["view", "fav", "cart", "buy"], "n_items": 3975, "n_categories": 199,
        "metrics": {"next_behavior": {"accuracy": 0.855, "macro_auc": 0.622},
                    "purchase": {"auc": 0.629, "ece": 0.052}},
        "providers": ["CPUExecutionProvider"],
        "onnx_sha256": "639591fbf500eef27bf2d739bd64760a6ec60c08d00779bcf8f56fe4bf37f0c2",
        "loaded_at": "2024-05-01T12:05:00+00:00",
    },
    ("/v1/model/live", "get"): {
        "serving_version": VERSION, "candidate_version": None, "candidate_mode": None,
        "candidate_share": None, "live_sample_share": 0.1,
        "versions": [{
            "version": VERSION, "role": "primary", "recorded": 1200, "scored_share": 0.91,
            "targets": {
                "next_behavior": {"scored": 1092, "log_loss": 0.52, "accuracy": 0.85,
                                  "training": {"log_loss": 0.5, "accuracy": 0.855}},
                "purchase": {"scored": 980, "log_loss": 0.41, "ece": 0.04, "auc": 0.61,
                             "positive_rate": 0.12,
                             "reliability": [{"bin": "0.10", "count": 512, "predicted": 0.12,
                                              "observed": 0.11}],
                             "training": {"log_loss": 0.4, "auc": 0.629, "ece": 0.052}},
                "return": {"scored": 980, "log_loss": 0.6, "auc": 0.66,
                           "training": {"log_loss": 0.58, "auc": 0.67}},
            },
            "drift": {"behavior": {"observations": 5400, "psi": 0.02},
                      "item": {"observations": 5400, "psi": 0.11, "unknown_share": 0.07}},
        }],
    },
    ("/v1/admin/reload", "post"): {
        "reloaded": False, "model_version": VERSION, "previous_version": VERSION,
        "reason": "unchanged",
    },
    ("/healthz", "get"): {"status": "ok"},
    ("/readyz", "get"): {"ready": True, "model": True, "redis": True},
}
METRICS = "# TYPE seqcast_events_ingested_total counter\nseqcast_events_ingested_total 1.0\n"
ERROR = {
    "error": "validation_error",
    "message": "behavior: Input should be 'view', 'fav', 'cart' or 'buy'",
    "fields": [{"field": "behavior", "message": "Input should be 'view', 'fav', 'cart' or 'buy'"}],
}
# Request examples of the parameters, by name (the bodies' are on their schemas).
PARAMETERS = {"user_id": USER_ID, "top_k": 5, "explain": False, "predict": False,
              "force": False, "at": "2024-05-01T12:00:00Z"}
