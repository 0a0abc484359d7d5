"""The window member codec: what is appended is what a read returns."""

from __future__ import annotations

from app.store.codec import decode_window, encode_event
from model.features import Event


def test_event_encoding_round_trips_unicode_and_missing_category() -> None:
    events = [Event("sku-ü", None, 3, 1714564800.25), Event('a"b|c', "c,1", 0, 0.0)]
    members = [f"{seq:012x}|{encode_event(e)}" for seq, e in enumerate(events, start=10)]
    assert decode_window(members) == events
