"""What the Gateways list and the gateway page show, and their live feeds."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from jinja2 import Template

from cloud.console.api import ApiClient

RESULTS = 20  # recent results on the gateway page
EVENTS = 50  # recent events (other than OTA steps) on the gateway page
EVENT_PAGE, EVENT_PAGES = 200, 5  # how the API's events are read to find them


async def gateways_context(api: ApiClient) -> dict[str, Any]:
    """The gateways, each with its reported OTA state, in one API call however large the fleet."""
    gateways: list[dict[str, Any]] = await api.get("/gateways", reported="true")
    return {"gateways": gateways, "live": "/console/gateways/events"}


def is_ota(event: dict[str, Any]) -> bool:
    """Whether an event belongs under OTA history (the API's own rule for that list)."""
    return str(event.get("kind", "")).startswith("ota")


async def other_events(api: ApiClient, path: str) -> dict[str, Any]:
    """The gateway's newest events that are not OTA steps (those are in its OTA history).

    The API filters by one kind, not "all but OTA", so pages are read until EVENTS others are
    found: a burst of OTA steps then does not push the other events off the page.
    """
    found: list[dict[str, Any]] = []
    ota_steps = 0
    offset: int | None = 0
    for _ in range(EVENT_PAGES):
        if offset is None or len(found) >= EVENTS:
            break
        page = await api.get(f"{path}/events", limit=EVENT_PAGE, offset=offset)
        found += [e for e in page["items"] if not is_ota(e)]
        ota_steps += sum(1 for e in page["items"] if is_ota(e))
        offset = page["next_offset"]
    more = offset is not None or len(found) > EVENTS
    # ota_steps: so an empty list can say the gateway did report, only OTA steps.
    return {"items": found[:EVENTS], "next_offset": EVENTS if more else None, "ota_steps": ota_steps}


async def gateway_context(api: ApiClient, gateway_id: str) -> dict[str, Any]:
    """One gateway: its state and telemetry, drift per slot, OTA picture, recent results and events."""
    path = f"/gateways/{quote(gateway_id, safe='')}"
    gw = await api.get(path)
    ota = await api.get(f"{path}/ota")
    results = await api.get("/results", gateway=gateway_id, limit=RESULTS)
    events = await other_events(api, path)
    drift = await api.get(f"{path}/drift")
    return {
        "gw": gw,
        "drift": drift,
        "ota": ota,
        "results": results["items"],
        "events": events,
        "live": f"/console{path}/events",
    }


class GatewaysFeed:
    """Successive updates of the Gateways list for its live stream.

    While the same gateways are listed, only the rows that changed go out (a fleet of hundreds
    sends a few rows per tick, not the whole table); when one appears or goes away, the table.
    """

    def __init__(self, parts: Template) -> None:
        self._parts = parts.module  # the macros of gateways_parts.html, shared with the page
        self._ids: list[str] | None = None
        self._rows: dict[str, str] = {}
        self._summary: str | None = None

    async def tick(self, api: ApiClient) -> dict[str, Any] | None:
        """The changed rows, or the whole table (None: nothing changed since the last tick)."""
        gateways = (await gateways_context(api))["gateways"]
        rows = {g["id"]: self._render("row", g) for g in gateways}
        ids = [g["id"] for g in gateways]
        parts: dict[str, str] = {}
        summary = self._render("summary", gateways)
        if summary != self._summary:
            parts["summary"] = self._summary = summary
        if ids != self._ids:
            parts["gateways"] = self._render("table", gateways)
            changed: dict[str, str] = {}
        else:
            changed = {gw: html for gw, html in rows.items() if self._rows.get(gw) != html}
        self._ids, self._rows = ids, rows
        if not parts and not changed:
            return None
        return {"parts": parts, "rows": changed}

    def _render(self, macro: str, *args: Any) -> str:
        return str(getattr(self._parts, macro)(*args))


GATEWAY_PARTS = ("status", "state", "drift", "machine", "ota", "events", "history", "results")


class GatewayFeed:
    """Successive updates of one gateway's page for its live stream: the fragments that changed."""

    def __init__(self, gateway_id: str, parts: Template) -> None:
        self.gateway_id = gateway_id
        self._parts = parts.module  # the macros of gateway_parts.html, shared with the page
        self._sent: dict[str, str] = {}

    async def tick(self, api: ApiClient) -> dict[str, Any] | None:
        """The gateway's online state and changed fragments (None: nothing changed)."""
        ctx = await gateway_context(api, self.gateway_id)
        args = {"status": ctx["gw"], "state": ctx["gw"], "drift": ctx["drift"], "machine": ctx["gw"],
                "ota": ctx["ota"], "events": ctx["events"], "history": ctx["ota"],
                "results": ctx["results"]}  # fmt: skip
        parts = {name: str(getattr(self._parts, name)(args[name])) for name in GATEWAY_PARTS}
        changed = {k: v for k, v in parts.items() if self._sent.get(k) != v}
        self._sent.update(changed)
        if not changed:
            return None
        return {"online": ctx["gw"]["online"], "parts": changed}
