"""An API answer streamed through the console: the body as the API sent it, chunk by chunk, with
the user's token; a refusal raised before anything is sent."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from cloud.console.api import ApiError
from cloud.console.relay import QUEUED_MESSAGES, stream_get
from tests.support.testclient import TestClient

CHUNKS = QUEUED_MESSAGES * 10  # many more than the queue holds: the API must wait for the reader


def api() -> FastAPI:
    inner = FastAPI()

    @inner.get("/api/v1/rows.csv")
    def rows(request: Request, n: int) -> StreamingResponse:
        if request.headers.get("authorization") != "Bearer tok":
            raise HTTPException(401, "no token")

        def lines() -> Iterator[bytes]:
            yield from (f"{i},row {i}\r\n".encode() for i in range(n))

        headers = {"Content-Disposition": 'attachment; filename="rows.csv"', "X-Internal": "kept inside"}
        return StreamingResponse(lines(), media_type="text/csv", headers=headers)

    @inner.get("/api/v1/refused")
    def refused() -> None:
        raise HTTPException(422, "kind: not one of ours")

    return inner


def console() -> TestClient:
    inner, outer = api(), FastAPI()

    @outer.get("/out/{path:path}")
    async def relay(path: str, request: Request) -> Response:
        try:
            return await stream_get(
                inner, request.query_params.get("token", ""), f"/{path}", {"n": str(CHUNKS)}
            )
        except ApiError as exc:
            return JSONResponse({"status": exc.status, "detail": exc.detail}, status_code=599)

    return TestClient(outer)


def test_the_body_passes_through_whole_with_the_files_headers() -> None:
    with console() as client:
        answer = client.get("/out/rows.csv?token=tok")
    assert answer.status_code == 200
    assert answer.text == "".join(f"{i},row {i}\r\n" for i in range(CHUNKS))
    assert answer.headers["content-disposition"] == 'attachment; filename="rows.csv"'
    assert answer.headers["content-type"].startswith("text/csv")
    assert "x-internal" not in answer.headers


def test_a_refusal_is_raised_before_anything_is_sent() -> None:
    with console() as client:
        refused = client.get("/out/refused?token=tok")
        unauthorised = client.get("/out/rows.csv?token=other")
    assert (refused.status_code, refused.json()) == (599, {"status": 422, "detail": "kind: not one of ours"})
    assert unauthorised.json() == {"status": 401, "detail": "no token"}
