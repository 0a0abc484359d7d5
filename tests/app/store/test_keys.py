"""Key naming: a pure function, with the Redis Cluster hash tag on the user id."""

from __future__ import annotations

from app.store.keys import seen_key, window_key


def test_keys_share_the_user_hash_tag() -> None:
    assert window_key("seqcast", "u-1") == "seqcast:{u-1}:w"
    assert seen_key("seqcast", "u-1") == "seqcast:{u-1}:seen"
    # Redis Cluster hashes the text between the first { and the next }: the same user id.
    for key in (window_key("p", "a:b"), seen_key("p", "a:b")):
        start = key.index("{")
        assert key[start + 1 : key.index("}", start)] == "a:b"
