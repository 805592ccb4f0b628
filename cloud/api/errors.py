"""The API's error model, documented the way it is answered.

Every refusal is JSON ``{"detail": ...}``:

- a 422 is either a list of issues, each naming where (``loc``), what (``msg``) and which kind
  (``type``), when the request does not match its documented shape; or one sentence naming the
  field, when a rule the shape cannot state refused a well-formed request (``since`` not before
  ``until``, a disposition that needs a flagged result, a cursor from another list);
- every other 4xx is one sentence saying what was refused and why.

FastAPI documents a 422 as the list only and leaves every other refusal without a body, 401 and
403 of guarded routes out altogether, and the 400 it answers to an unreadable body too; and its
router answers a 405 with the methods of the first route on the path, not all of them.
:func:`install_error_model` puts both right: the OpenAPI document is completed from the routes
themselves (their guards, bodies and declared refusals), and a 405 lists every method the path
has. A value the database cannot store (a NUL in text) is a 422 saying so, not a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from cloud.api.guards import endpoints, guards_of

log = logging.getLogger(__name__)
ERROR = "ErrorMessage"
VALIDATION = "HTTPValidationError"
_REF = "#/components/schemas/"
_AUTH_REFUSALS = {
    "401": "No token, or one that opens nothing (unknown, revoked, expired, of a disabled user)",
    "403": "The token's role is too low for this",
}
_UNREADABLE_BODY = "The body cannot be read as its content type says (not UTF-8 JSON)"


class ErrorMessage(BaseModel):
    """A refusal: what was refused and why, in one sentence."""

    detail: str


def install_error_model(app: FastAPI) -> None:
    """Answer 405s with every method of the path, a value the database cannot store with a 422,
    and complete ``app``'s OpenAPI document."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DataError, _unstorable)
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        document_errors(app, schema)  # idempotent: FastAPI caches the document it returns
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend it


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, StarletteHTTPException):  # registered for these only
        raise exc
    if exc.status_code == 405:
        allowed = sorted(_methods_of_path(request))
        exc = StarletteHTTPException(
            405, exc.detail, headers={**(exc.headers or {}), "Allow": ", ".join(allowed)}
        )
    return await http_exception_handler(request, exc)


async def _unstorable(request: Request, exc: Exception) -> Response:
    """A value the database refuses (a NUL in text, a number past its column) came from the
    request: the parameters' bounds catch most of them first; this is the net under them all."""
    reason = str(getattr(exc, "orig", exc)).splitlines()[0]
    log.warning(
        "%s %s: the database refused a value of the request: %s", request.method, request.url.path, reason
    )
    return JSONResponse({"detail": f"the request holds a value the database cannot store: {reason}"}, 422)


def _methods_of_path(request: Request) -> set[str]:
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(route.methods or ())
    return methods


def document_errors(app: FastAPI, schema: dict[str, Any]) -> None:
    """Complete ``schema`` (``app``'s OpenAPI document): the error bodies, the guarded routes' 401
    and 403, the 400 of an unreadable body, and dict keys held to their pattern."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault(ERROR, ErrorMessage.model_json_schema())
    components.setdefault(VALIDATION, {"title": VALIDATION, "type": "object"})
    components[VALIDATION]["properties"] = {
        "detail": {
            "title": "Detail",
            "description": "The issues, each naming where it is (loc), when the request does not match "
            "its documented shape; one sentence naming the field when a rule refused a well-formed request",
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"$ref": f"{_REF}ValidationError"}}],
        }
    }
    components[VALIDATION]["required"] = ["detail"]
    paths = schema.get("paths", {})
    for endpoint in endpoints(app):
        guarded = bool(guards_of(endpoint))
        for method in endpoint.methods - {"HEAD", "OPTIONS"}:
            operation = paths.get(endpoint.path, {}).get(method.lower())
            if operation is not None:
                _document_operation(operation, guarded)
    for node in _objects(components):
        _hold_keys_to_pattern(node)


def _document_operation(operation: dict[str, Any], guarded: bool) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if guarded:
        for status, description in _AUTH_REFUSALS.items():
            responses.setdefault(status, {"description": description})
    if "requestBody" in operation:
        responses.setdefault("400", {"description": _UNREADABLE_BODY})
    for status, response in responses.items():
        if status == "422":
            response["content"] = {"application/json": {"schema": {"$ref": f"{_REF}{VALIDATION}"}}}
        elif status[0] in "45" and "content" not in response:
            response["content"] = {"application/json": {"schema": {"$ref": f"{_REF}{ERROR}"}}}


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


def _hold_keys_to_pattern(node: dict[str, Any]) -> None:
    """pydantic documents a dict whose keys have a pattern as ``patternProperties`` alone, which
    lets any other key through; the model refuses those, so the document says so too."""
    if "patternProperties" in node and "additionalProperties" not in node:
        node["additionalProperties"] = False
