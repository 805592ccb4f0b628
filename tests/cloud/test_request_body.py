"""Bodies over their cap are refused before the server holds them: over a real socket, a declared
Content-Length over the cap gets 413 with no body sent, and an endless chunked body gets 413 after
the app read little more than the cap (the login form, the console's forms, a blob upload)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cloud.api import create_app
from cloud.api.routers.login import LOGIN_MAX_BYTES
from cloud.config import CloudSettings
from cloud.console.session import MAX_FORM_BYTES
from tests.support.raw_http import BodyCounter, chunk, send_raw, serving
from tests.support.releases import RecordingPublisher
from tests.support.tokens import mint_tokens

OFFERED = 64 << 20  # what a client tries to send: 64 MiB
PIECE = 64 << 10
# What the app may read past a cap: the server hands it the body in pieces of up to 256 KiB.
SLACK = 512 << 10
SHA = "ab" * 32
BLOB_SIZE = 1000


@dataclass
class Served:
    port: int
    counter: BodyCounter
    admin: str


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[Served]:
    admin = mint_tokens(db_url)["admin"]
    settings = CloudSettings(
        db_url=db_url, artifact_dir=str(tmp_path / "artifacts"), max_artifact_bytes=10 << 20
    )
    counter = BodyCounter(create_app(settings, RecordingPublisher()))
    with serving(counter) as port:
        yield Served(port, counter, admin)


def _head(method: str, path: str, extra: str, token: str | None = None) -> str:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    origin = "Origin: http://127.0.0.1\r\n"
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{origin}{auth}{extra}\r\n"


CASES = [  # method, path, cap, needs the admin token
    ("POST", "/api/v1/auth/login", LOGIN_MAX_BYTES, False),
    ("POST", "/login", MAX_FORM_BYTES, False),
    ("PUT", f"/api/v1/blobs/{SHA}?size={BLOB_SIZE}", BLOB_SIZE, True),
]


@pytest.mark.parametrize(("method", "path", "cap", "admin"), CASES)
def test_a_declared_length_over_the_cap_is_refused_before_any_body_is_sent(
    served: Served, method: str, path: str, cap: int, admin: bool
) -> None:
    head = _head(method, path, "Content-Length: 1073741824\r\n", served.admin if admin else None)
    answer = send_raw(served.port, head)  # not one body byte: the answer cannot wait for them
    assert answer.status == 413, answer.head
    assert served.counter.read[path.split("?")[0]] == 0


@pytest.mark.parametrize(("method", "path", "cap", "admin"), CASES)
def test_an_endless_chunked_body_is_cut_off_just_past_the_cap(
    served: Served, method: str, path: str, cap: int, admin: bool
) -> None:
    head = _head(method, path, "Transfer-Encoding: chunked\r\n", served.admin if admin else None)
    answer = send_raw(served.port, head, chunk(b"x" * PIECE), repeat=OFFERED // PIECE)
    assert answer.status == 413, answer.head
    read = served.counter.read[path.split("?")[0]]
    assert cap < read <= cap + SLACK
    assert answer.body_sent < OFFERED


def test_a_blob_larger_than_the_registry_takes_is_refused_unread(served: Served) -> None:
    path = f"/api/v1/blobs/{SHA}?size={(10 << 20) + 1}"
    answer = send_raw(served.port, _head("PUT", path, "Content-Length: 1000\r\n", served.admin))
    assert answer.status == 413, answer.head
    assert served.counter.read[f"/api/v1/blobs/{SHA}"] == 0
