"""Every MQTT topic string is built and parsed here, nowhere else.

Layout: ``factory/v1/<gateway_id>/<channel>``. The version segment lets a future wire format
live beside this one on the same broker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

TOPIC_ROOT = "factory/v1"
GATEWAY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_GATEWAY_ID_RE = re.compile(GATEWAY_ID_PATTERN)


class Channel(StrEnum):
    """What a message on a gateway's subtree is about."""

    STATE = "state"  # retained birth / last-will
    RESULTS = "results"  # batches of inference results, QoS 1, via the outbox
    TELEMETRY = "telemetry"  # periodic gauges and counters
    ACK = "ack"  # cloud -> gateway: cumulative commit acknowledgement
    DESIRED = "desired"  # cloud -> gateway, retained: which model in which slot
    REPORTED = "reported"  # gateway -> cloud, retained: what actually runs
    EVENTS = "events"  # gateway -> cloud: notable happenings (OTA progress, shedding)
    CAPTURES = "captures"  # cloud -> gateway, retained: open capture orders (protocol/captures.py)


class TopicError(ValueError):
    """A topic string that is not part of the factory/v1 contract."""


def validate_gateway_id(gateway_id: str) -> str:
    """Return ``gateway_id`` if it is a legal single topic level, else raise TopicError."""
    if not _GATEWAY_ID_RE.fullmatch(gateway_id):
        raise TopicError(
            f"gateway id {gateway_id!r} must match {GATEWAY_ID_PATTERN} "
            "(letters, digits, '_', '.', '-'; at most 64 characters)"
        )
    return gateway_id


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed topic on one gateway's subtree."""

    gateway_id: str
    channel: Channel


@dataclass(frozen=True, slots=True)
class TopicSpace:
    """Builds and parses topics under one root.

    Production uses the default root ``factory/v1``. A test or a second plant sharing one
    broker gets its own namespace by prefixing the root (``"test-1a2b/factory/v1"``), so
    retained messages and subscriptions never cross.
    """

    root: str = TOPIC_ROOT

    def __post_init__(self) -> None:
        if not self.root or self.root.startswith("/") or self.root.endswith("/"):
            raise TopicError(f"topic root {self.root!r} must be non-empty without leading/trailing '/'")
        if any(ch in self.root for ch in "+#$"):
            raise TopicError(f"topic root {self.root!r} must not contain '+', '#' or '$'")

    def topic(self, gateway_id: str, channel: Channel) -> str:
        """Build the topic string for ``channel`` on ``gateway_id``'s subtree."""
        return f"{self.root}/{validate_gateway_id(gateway_id)}/{channel.value}"

    def parse(self, value: str) -> Topic:
        """Parse a concrete topic string; raise TopicError naming what is wrong."""
        prefix = self.root + "/"
        if not value.startswith(prefix):
            raise TopicError(f"topic {value!r} is not under {self.root}/")
        parts = value[len(prefix) :].split("/")
        if len(parts) != 2:
            raise TopicError(f"topic {value!r} must be {self.root}/<gateway_id>/<channel>")
        gateway_id, channel_name = parts
        validate_gateway_id(gateway_id)
        try:
            channel = Channel(channel_name)
        except ValueError:
            known = ", ".join(c.value for c in Channel)
            raise TopicError(f"topic {value!r}: unknown channel {channel_name!r} (known: {known})") from None
        return Topic(gateway_id, channel)

    def subscription(
        self, channel: Channel | None, gateway_id: str = "+", share_group: str | None = None
    ) -> str:
        """Build a subscription filter.

        ``gateway_id="+"`` matches every gateway; ``channel=None`` matches every channel. With
        ``share_group`` the filter becomes an MQTT shared subscription, so that several cloud
        workers split one stream between them.
        """
        if gateway_id != "+":
            validate_gateway_id(gateway_id)
        tail = channel.value if channel is not None else "+"
        filt = f"{self.root}/{gateway_id}/{tail}"
        if share_group:
            if any(ch in share_group for ch in "/+#"):
                raise TopicError(f"share group {share_group!r} must be one plain topic level")
            return f"$share/{share_group}/{filt}"
        return filt


DEFAULT_SPACE = TopicSpace()


def topic(gateway_id: str, channel: Channel) -> str:
    """Build a topic in the default space."""
    return DEFAULT_SPACE.topic(gateway_id, channel)


def parse_topic(value: str) -> Topic:
    """Parse a topic in the default space."""
    return DEFAULT_SPACE.parse(value)
