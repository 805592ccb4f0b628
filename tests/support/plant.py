"""A production-profile API over the seeded database of tests/support/database.py, a token per
role, and a way to feed it more gateway messages (parcels, notes) as ingest would store them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cloud.api import create_app
from cloud.config import CloudSettings
from cloud.datasets.orders import OrdersPublisher
from cloud.db import make_engine, make_sessionmaker
from cloud.ingest.service import ingest_messages
from protocol.messages import NotesOutput, ParcelOutput, ResultItem, WireModel
from protocol.topics import Channel, TopicSpace
from tests.support.database import seed
from tests.support.messages import T0, batch, inbound, item, new_stream, state
from tests.support.releases import RecordingPublisher
from tests.support.testclient import TestClient
from tests.support.tokens import bearer, mint_tokens


@dataclass
class Plant:
    """The API (production profile: every read needs a token) over :func:`seed`'s data: line-1 has
    gw-a's 10 defect results at T0 + 1..10 min (seq 3, 6 and 9 defective), line-2 gw-b's 5
    classification results."""

    client: TestClient
    tokens: dict[str, str]
    db_url: str
    topics: TopicSpace

    def headers(self, role: str) -> dict[str, str]:
        """The Authorization header of the token of ``role`` (viewer, operator, admin)."""
        return bearer(self.tokens[role])

    def get(self, path: str, role: str = "viewer", status: int = 200, **params: Any) -> Any:
        """GET ``/api/v1{path}`` as ``role``; assert the status, return the JSON body."""
        answer = self.client.get(f"/api/v1{path}", params=params, headers=self.headers(role))
        assert answer.status_code == status, answer.text
        return answer.json()

    def results(self, line: str, **params: Any) -> list[dict[str, Any]]:
        """``line``'s results, newest first."""
        items: list[dict[str, Any]] = self.get("/results", line=line, limit=1000, **params)["items"]
        return items

    def ingest(self, gateway_id: str, channel: Channel, *messages: WireModel) -> None:
        """Store gateway messages through the ingest service, as a worker would."""
        engine = make_engine(self.db_url)
        try:
            found = [inbound(self.topics, gateway_id, channel, m) for m in messages]
            ingest_messages(make_sessionmaker(engine), found, self.topics)
        finally:
            engine.dispose()


@contextmanager
def running_plant(
    db_url: str, topics: TopicSpace, folder: Path, orders: OrdersPublisher | None = None
) -> Iterator[Plant]:
    """:class:`Plant` on a freshly seeded ``db_url`` (``orders``: where capture orders go)."""
    seed(db_url, topics)
    tokens = mint_tokens(db_url)
    settings = CloudSettings(
        profile="production",
        db_url=db_url,
        broker_url="mqtts://broker.plant:8883",
        broker_username="cloud",
        broker_password="a-real-broker-password",
        artifact_dir=str(folder / "artifacts"),
    )
    with TestClient(create_app(settings, RecordingPublisher(), orders)) as client:
        yield Plant(client, tokens, db_url, topics)


def parcels(line: str, at: datetime, damaged: list[bool]) -> list[ResultItem]:
    """Parcel results one second apart from ``at`` (lane 'a'; a damaged one goes to 'reject')."""
    found = []
    for seq, hurt in enumerate(damaged, start=1):
        output = ParcelOutput(label="reject" if hurt else "a", score=0.99, track_id=seq, damaged=hurt)
        moment = at + timedelta(seconds=seq)
        found.append(
            item(seq, line=line, at=moment, model="parcel-det").model_copy(update={"output": output})
        )
    return found


def note(seq: int, text: str, at: datetime = T0, line: str = "line-1") -> ResultItem:
    """A maintenance note triaged by the notes model, with its text."""
    output = NotesOutput(
        label="electrical", score=0.8, category="electrical", urgency="high", urgency_score=0.7, text=text
    )
    return item(seq, line=line, at=at, model="notes-minilm").model_copy(
        update={"output": output, "frame": f"note-{seq}.txt"}
    )


def feed(plant: Plant, gateway_id: str, line: str, results: list[ResultItem]) -> None:
    """``gateway_id`` (on ``line``) is born and sends ``results`` in one batch on a stream of its own."""
    plant.ingest(gateway_id, Channel.STATE, state(gateway_id, True, 1, line=line))
    plant.ingest(gateway_id, Channel.RESULTS, batch(gateway_id, new_stream(), results))
