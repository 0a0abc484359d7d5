"""Request and response bodies, named by role, with limits at the boundary.

Hard caps live here (`Field`); the configurable limits (`SEQCAST_MAX_ID_LENGTH`,
`SEQCAST_MAX_BATCH_EVENTS`, `SEQCAST_MAX_CLOCK_SKEW_SECONDS`) are checked against the
settings in the routes.

A user id is a path segment of `GET /v1/users/{user_id}/prediction` and
`DELETE /v1/users/{user_id}`, so one rule (`check_user_id`) holds wherever a user id is
given: an id the path cannot carry (a `/`, the dot segments `.` and `..`) is refused where
it would be stored, rather than stored and unreachable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
)

from model.features import BEHAVIOR_NAMES
from model.timestamps import END, NUMBER_PATTERN, START, parse_timestamp

if TYPE_CHECKING:
    BehaviorName = str
else:  # the contract's names, in its order: the JSON schema lists them as an enum
    BehaviorName = Literal[BEHAVIOR_NAMES]

# How many items and categories a prediction lists, wherever a client chooses it.
TOP_K_DEFAULT, TOP_K_MIN, TOP_K_MAX = 10, 1, 100

ID_HARD_LIMIT = 1024
EVENTS_HARD_LIMIT = 100_000
SEQUENCES_HARD_LIMIT = 1000

Id = Annotated[str, Field(min_length=1, max_length=ID_HARD_LIMIT, pattern=r"^[^\x00-\x1f\x7f]+$")]

USER_ID_RULE = (
    "1 to SEQCAST_MAX_ID_LENGTH characters (default 128); no control characters, no '/', "
    "not '.' or '..' (the id is a path segment: percent-encode other reserved characters)"
)
USER_ID_PATTERN = r"^(?!\.\.?$)[^\x00-\x1f\x7f/]+$"
_CONTROL = {chr(c) for c in (*range(32), 127)}


def check_user_id(value: str) -> str:
    """The user id rule (USER_ID_RULE, but the configurable length); ValueError says which."""
    if not value:
        raise ValueError("a user id must not be empty")
    if "/" in value or value in (".", ".."):
        raise ValueError("a user id is a path segment: no '/', not '.' or '..'")
    if not _CONTROL.isdisjoint(value):
        raise ValueError("a user id must not contain control characters")
    return value


UserId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=ID_HARD_LIMIT,
        description=USER_ID_RULE,
        json_schema_extra={"pattern": USER_ID_PATTERN},  # checked by check_user_id
    ),
    AfterValidator(check_user_id),
]


# The grammar of `model.timestamps` as a JSON Schema pattern (no flags, no back-references),
# with the calendar's fields narrowed as far as a pattern can: years 1969 and 2100 are in it
# because a zone offset can move their edge hours inside the bounds.
_YEAR = r"(1969|19[7-9][0-9]|20[0-9]{2}|2100)"
_MONTH, _DAY = r"(0[1-9]|1[0-2])", r"(0[1-9]|[12][0-9]|3[01])"
_HOUR, _MIN = r"([01][0-9]|2[0-3])", r"[0-5][0-9]"
_TIME = rf"[Tt ]{_HOUR}((:{_MIN}(:{_MIN}([.,][0-9]+)?)?)?|({_MIN}({_MIN}([.,][0-9]+)?)?)?)"
_ZONE = rf" *([Zz]|[Uu][Tt][Cc]|[+-]{_HOUR}(:?{_MIN})?)?"
_ISO = rf"({_YEAR}-{_MONTH}-{_DAY}|{_YEAR}{_MONTH}{_DAY})({_TIME})?{_ZONE}"
TIMESTAMP_PATTERN = rf"^\s*({NUMBER_PATTERN}|{_ISO})\s*$"
TIMESTAMP_RULE = (
    "unix seconds, as a JSON number or a decimal string (\"1714564800\", \"1.7e9\"; "
    "milliseconds and finer units are not read: they lie past the upper bound), or an ISO "
    "8601 string with a calendar date and optional time and zone (\"2024-05-01T12:00:00Z\", "
    "\"2024-05-01 12:00:00+02:00\", \"2024-05-01\"; no zone = UTC). The instant lies from "
    f"1970-01-01T00:00:00Z ({START:.0f}) up to, not including, 2100-01-01T00:00:00Z "
    f"({END:.0f}), after the zone offset; the date exists (no 2023-02-29); surrounding "
    "whitespace is ignored. The rule of `model.timestamps`."
)


def _seconds(value: Any) -> float:
    return parse_timestamp(value)  # unix seconds: the API reads numbers in no other unit


# An event time: the one rule of `model.timestamps.parse_timestamp`, documented as the union
# of its number and string forms (what the pattern cannot say is in the description).
Timestamp = Annotated[
    float,
    BeforeValidator(_seconds),
    WithJsonSchema({
        "anyOf": [
            {"type": "number", "minimum": START, "exclusiveMaximum": END},
            {"type": "string", "pattern": TIMESTAMP_PATTERN},
        ],
        "description": TIMESTAMP_RULE,
        "examples": ["2024-05-01T12:00:00Z", 1714564800],
    }),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SequenceEventIn(_Strict):
    """One past event of a sequence scored statelessly."""

    item_id: Id
    category_id: Id | None = None
    behavior: BehaviorName
    timestamp: Timestamp


class EventIn(_Strict):
    """One behavior event of one user."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": "u-1001",
                    "item_id": "sku-42",
                    "category_id": "shoes",
                    "behavior": "view",
                    "timestamp": "2024-05-01T12:00:00Z",
                    "event_id": "evt-7f3a",
                }
            ]
        }
    )

    user_id: UserId
    item_id: Id
    category_id: Id | None = None
    behavior: BehaviorName
    timestamp: Timestamp | None = Field(
        None,
        description="server time if absent; at most SEQCAST_MAX_CLOCK_SKEW_SECONDS (default "
        "300) ahead of the server clock",
    )
    event_id: Id | None = Field(
        None, description="re-sending an event with the same id does not count it twice"
    )


class EventsIn(_Strict):
    """A batch of events, of any number of users (up to SEQCAST_MAX_BATCH_EVENTS)."""

    events: list[EventIn] = Field(min_length=1, max_length=EVENTS_HARD_LIMIT)


def _event_body_kind(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "events" in value else "single"


EventsBody = Annotated[
    Annotated[EventsIn, Tag("batch")] | Annotated[EventIn, Tag("single")],
    Discriminator(_event_body_kind),
]


class SequenceIn(_Strict):
    user_id: UserId | None = Field(None, description="echoed back; not looked up")
    events: list[SequenceEventIn] = Field(max_length=EVENTS_HARD_LIMIT)


def _whole(value: Any) -> Any:
    """A float with no fraction as the int it equals; anything else as given."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class PredictIn(_Strict):
    """Stateless scoring: each sequence is scored as if it were a user's window."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sequences": [
                        {
                            "user_id": "what-if-1",
                            "events": [
                                {"item_id": "sku-42", "category_id": "shoes",
                                 "behavior": "view", "timestamp": 1714564800},
                                {"item_id": "sku-42", "category_id": "shoes",
                                 "behavior": "cart", "timestamp": 1714564860},
                            ],
                        }
                    ],
                    "top_k": 5,
                    "explain": False,
                    "at": 1714564900,
                }
            ]
        }
    )

    sequences: list[SequenceIn] = Field(min_length=1, max_length=SEQUENCES_HARD_LIMIT)
    top_k: Annotated[int, BeforeValidator(_whole)] = Field(
        TOP_K_DEFAULT, ge=TOP_K_MIN, le=TOP_K_MAX, strict=True,
        description="a JSON integer: 3, or 3.0, the same number in JSON Schema's eyes (not a "
        "string, a fraction or a boolean)",
    )
    explain: bool = Field(False, strict=True, description="a JSON boolean")
    at: Timestamp | None = Field(
        None, description="the moment the answers are about (default: now): purchase and "
        "return probabilities are within the horizon from then",
    )


class ScoredId(BaseModel):
    id: str
    score: float | None = Field(
        None, description="the model's probability that this id is next (for items from an "
        "approximate index: an estimate of it); null for cold-start priors"
    )


class Anomaly(BaseModel):
    surprise: float = Field(description="mean per-event surprise (nats) of the window")
    percentile: float = Field(
        description="the anomaly score (0..1): the share of ordinary shoppers' windows (the "
        "validation period's) that look less unusual than this one on their most unusual "
        "measure - improbable under the model (surprise), repeated events, gaps under 5 s, "
        "gaps of one metronomic length. Ordinary windows score evenly in 0..1 (0.99 flags "
        "about 1 % of them); scripted and improbable windows score near 1"
    )


class Contribution(BaseModel):
    position: int = Field(description="index of the event in the window, oldest = 0")
    item_id: str
    category_id: str | None = None
    behavior: BehaviorName
    timestamp: float
    contribution: float = Field(
        description="purchase probability with the event minus without it"
    )


class PredictionOut(BaseModel):
    user_id: str | None = None
    model_version: str
    cold_start: bool = Field(description="no history: the model's priors")
    window_length: int
    next_behavior: dict[str, float]
    purchase_probability: float
    return_probability: float
    horizon_seconds: int
    top_items: list[ScoredId]
    top_categories: list[ScoredId]
    anomaly: Anomaly | None = Field(None, description="null for windows of fewer than 2 events")
    explanation: list[Contribution] | None = None


class UserIngestOut(BaseModel):
    user_id: str
    added: int
    duplicates: int
    window_length: int


class EventsOut(BaseModel):
    accepted: int
    duplicates: int
    users: list[UserIngestOut]
    predictions: list[PredictionOut] | None = None


class PredictionsOut(BaseModel):
    predictions: list[PredictionOut]


class DeletedOut(BaseModel):
    user_id: str
    deleted: bool


class ModelCardOut(BaseModel):
    model_version: str
    trained_at: str
    horizon_seconds: int
    return_gap_seconds: int
    window_len: int
    behaviors: list[str]
    n_items: int
    n_categories: int
    metrics: dict[str, Any]
    providers: list[str]
    onnx_sha256: str
    loaded_at: str


class ReloadOut(BaseModel):
    reloaded: bool
    model_version: str
    previous_version: str | None
    reason: str | None = None


class ReliabilityBinOut(BaseModel):
    bin: str = Field(description="the probability bin's lower edge")
    count: float
    predicted: float = Field(description="mean predicted probability in the bin")
    observed: float = Field(description="share of positives in the bin")


class TargetLiveOut(BaseModel):
    """One target's live figures (since the service started) and the training report's."""

    scored: float = 0
    log_loss: float | None = None
    accuracy: float | None = None
    ece: float | None = None
    auc: float | None = None
    positive_rate: float | None = None
    reliability: list[ReliabilityBinOut] = []
    training: dict[str, float] = Field(
        default_factory=dict, description="the same figures in the training report"
    )


class DriftOut(BaseModel):
    observations: float
    psi: float | None = Field(description="population stability index against the training "
                              "data; null below 100 observations")
    unknown_share: float | None = None


class VersionLiveOut(BaseModel):
    version: str
    role: Literal["primary", "candidate", "earlier"]
    recorded: float = Field(description="served predictions kept to be scored")
    scored_share: float | None = Field(description="share of them whose outcome came")
    targets: dict[str, TargetLiveOut]
    drift: dict[str, DriftOut]


class LiveOut(BaseModel):
    serving_version: str
    candidate_version: str | None
    candidate_mode: Literal["shadow", "ab"] | None
    candidate_share: float | None
    live_sample_share: float
    versions: list[VersionLiveOut]


class ReadyOut(BaseModel):
    ready: bool
    model: bool
    redis: bool


class ErrorField(BaseModel):
    field: str
    message: str


class ErrorOut(BaseModel):
    error: str
    message: str
    fields: list[ErrorField] | None = None
