"""Topic building and parsing: every topic on the wire round-trips, and bad ones are named."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.topics import (
    DEFAULT_SPACE,
    TOPIC_ROOT,
    Channel,
    TopicError,
    TopicSpace,
    parse_topic,
    topic,
    validate_gateway_id,
)

gateway_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
roots = st.lists(st.from_regex(r"\A[a-z0-9-]{1,12}\Z"), min_size=1, max_size=3).map("/".join)


@given(gateway_ids, st.sampled_from(list(Channel)))
def test_default_topic_round_trips(gateway_id: str, channel: Channel) -> None:
    built = topic(gateway_id, channel)
    assert built == f"{TOPIC_ROOT}/{gateway_id}/{channel.value}"
    parsed = parse_topic(built)
    assert (parsed.gateway_id, parsed.channel) == (gateway_id, channel)


@given(roots, gateway_ids, st.sampled_from(list(Channel)))
def test_custom_space_round_trips_and_stays_apart(root: str, gateway_id: str, channel: Channel) -> None:
    space = TopicSpace(root)
    parsed = space.parse(space.topic(gateway_id, channel))
    assert parsed.gateway_id == gateway_id
    assert parsed.channel is channel
    if root != TOPIC_ROOT:
        with pytest.raises(TopicError, match="is not under"):
            DEFAULT_SPACE.parse(space.topic(gateway_id, channel))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("other/v1/gw/results", "is not under"),
        ("factory/v1/gw/results/extra", "must be"),
        ("factory/v1/gw", "must be"),
        ("factory/v1/gw/bogus", "unknown channel 'bogus'"),
        ("factory/v1/-gw/results", "gateway id"),
        ("factory/v1/+/results", "gateway id"),
    ],
)
def test_parse_rejects_with_reason(value: str, reason: str) -> None:
    with pytest.raises(TopicError, match=reason):
        parse_topic(value)


@pytest.mark.parametrize("bad", ["", "a/b", "a+b", "#", "x" * 65, "-lead", "sp ace"])
def test_gateway_id_rejected(bad: str) -> None:
    with pytest.raises(TopicError):
        validate_gateway_id(bad)


def test_subscriptions() -> None:
    space = TopicSpace("t/factory/v1")
    assert space.subscription(Channel.RESULTS) == "t/factory/v1/+/results"
    assert space.subscription(None, gateway_id="gw-1") == "t/factory/v1/gw-1/+"
    assert space.subscription(Channel.STATE, share_group="ingest") == "$share/ingest/t/factory/v1/+/state"
    with pytest.raises(TopicError):
        space.subscription(Channel.STATE, share_group="a/b")


@pytest.mark.parametrize("root", ["", "/x", "x/", "a/+/b", "a/#", "$SYS"])
def test_bad_roots_rejected(root: str) -> None:
    with pytest.raises(TopicError):
        TopicSpace(root)
