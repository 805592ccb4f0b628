"""The console's view of the API: in-process HTTP calls carrying the logged-in user's token.

Going through the API (not the tables) means the console sees exactly what ``factoryctl`` sees and
the API's role checks still decide every read and write.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI


class ApiError(Exception):
    """An API call the console made failed; ``status`` and ``detail`` come from the API."""

    def __init__(
        self,
        method: str,
        path: str,
        status: int,
        detail: str,
        errors: Any = None,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(f"{method} {path} -> {status}: {detail}")
        self.status = status
        self.detail = detail
        self.errors = errors  # the API's structured detail (a 422's list of field errors), if any
        self.retry_after = retry_after  # a 429's Retry-After, passed on to the browser


class ApiClient:
    """Calls ``/api/v1`` of ``app`` in-process with ``token`` as the bearer (None: anonymous).

    ``client`` is the browser's address, which the API then sees (the login throttle counts
    failures per source address); without it the call comes from 127.0.0.1.
    """

    def __init__(self, app: FastAPI, token: str | None, client: tuple[str, int] | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=client or ("127.0.0.1", 123)),
            base_url="http://console.internal/api/v1",
            headers=headers,
            timeout=30.0,
        )

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request; raise :class:`ApiError` on a non-2xx answer."""
        response = await self._client.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            retry_after = response.headers.get("retry-after")
            raise ApiError(method, path, response.status_code, str(detail), detail, retry_after)
        return response

    async def get(self, path: str, **params: Any) -> Any:
        """GET ``path`` and return its JSON body."""
        return (await self.request("GET", path, params=params or None)).json()

    async def post(self, path: str, body: Any) -> Any:
        """POST JSON ``body`` to ``path`` and return the JSON answer."""
        return (await self.request("POST", path, json=body)).json()
