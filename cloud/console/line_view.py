"""What the Line page shows (charts over a range, defects by type, gallery with operators'
dispositions, CSV exports of the range), and its live feed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from jinja2 import Template

from cloud.console.api import ApiClient
from cloud.console.line_tasks import split_stats
from cloud.console.notes_view import notes_href
from protocol.messages import utcnow

# Selectable ranges of the Line page: (window, bucket width in seconds).
RANGES = {"1h": (timedelta(hours=1), 60), "6h": (timedelta(hours=6), 600), "24h": (timedelta(days=1), 3600),
          "7d": (timedelta(days=7), 6 * 3600)}  # fmt: skip
GALLERY_SIZE = 24
EXPORTS = ("results", "dispositions", "alerts", "notes")  # what the page offers as CSV of its range


def box_style(box: dict[str, Any] | None, crop: dict[str, Any] | None) -> str:
    """CSS placing the anomaly box (source-frame pixels) over its thumbnail (a crop of the frame)."""
    if not box or not crop or not crop.get("w") or not crop.get("h"):
        return ""

    def pct(value: float, size: float) -> float:
        return round(min(max(100 * value / size, 0.0), 100.0), 2)

    left, top = pct(box["x"] - crop["x"], crop["w"]), pct(box["y"] - crop["y"], crop["h"])
    width = min(pct(box["w"], crop["w"]), 100 - left)
    height = min(pct(box["h"], crop["h"]), 100 - top)
    return f"left:{left}%;top:{top}%;width:{width}%;height:{height}%"


def range_of(range_key: str) -> str:
    """The range key to use: the asked one if known, else the first hour."""
    return range_key if range_key in RANGES else "1h"


def range_start(range_key: str, now: datetime) -> tuple[datetime, int]:
    """Where the range ending ``now`` starts, and its bucket width in seconds.

    Buckets sit on whole multiples of their width (the last one still filling): successive ticks
    then draw the same bars, and the live stream sends nothing, until a result or a new bucket comes.
    """
    window, interval = RANGES[range_of(range_key)]
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % interval, UTC) - window + timedelta(
        seconds=interval
    ), interval


async def line_stats(api: ApiClient, line: str, range_key: str) -> dict[str, Any]:
    """The line's buckets over the range ending now, plus the chart series drawn from them."""
    now = utcnow()
    since, interval = range_start(range_key, now)
    stats, every = await split_stats(
        api, line, since=since.isoformat(), until=now.isoformat(), interval_s=interval
    )
    return {
        "stats": stats,
        # The line's maintenance notes over the range, counted apart from its production figures.
        "notes": {"count": every["notes"], "urgent": every["urgent_notes"], "href": notes_href(line)},
        # Exact counts by the database over the whole range, most frequent first.
        "breakdown": list(stats["defects_by_label"].items()),
        "counts": [b["results"] for b in stats["buckets"]],
        "rates": [b["defect_rate"] for b in stats["buckets"]],
        "labels": [b["start"][:16].replace("T", " ") for b in stats["buckets"]],
    }


async def line_gallery(api: ApiClient, line: str, can_act: bool = False) -> dict[str, Any]:
    """The newest defect pictures of the line, each with the CSS placing its anomaly box, its line
    (where its disposition form posts) and whether the viewer may set its disposition."""
    gallery: list[dict[str, Any]] = await api.get(f"/lines/{quote(line)}/defects", limit=GALLERY_SIZE)
    for item in gallery:
        item["box_style"] = box_style(item.get("box"), item.get("crop"))
        item.update(line=line, can_act=can_act)
    return {"gallery": gallery}


async def line_drift(api: ApiClient, line: str) -> list[dict[str, Any]]:
    """Each watched slot's drift verdict on the line's gateways."""
    slots: list[dict[str, Any]] = await api.get(f"/lines/{quote(line, safe='')}/drift")
    return slots


async def line_context(api: ApiClient, line: str, range_key: str, can_act: bool = False) -> dict[str, Any]:
    """Everything the Line page renders; ``can_act``: the user may set dispositions (operator, admin)."""
    charts = await line_stats(api, line, range_key)
    defects = await line_gallery(api, line, can_act)
    drift = await line_drift(api, line)
    key = range_of(range_key)
    page = f"/console/lines/{quote(line, safe='')}"
    exports = {kind: f"{page}/export/{kind}.csv?range={key}" for kind in EXPORTS}
    context = {"line": line, "range": key, "ranges": list(RANGES), "live": f"{page}/events?range={key}"}
    return {**context, "exports": exports, "drift": drift, **charts, **defects}


class LineFeed:
    """Successive updates of one line for its live stream, sending only what changed.

    Each tick asks for the line's stats (the buckets and the defects by label, aggregated by the
    database), for its slots' drift verdicts, for the newest flagged result alone and for the
    line's most recently set disposition alone. The gallery is asked for only when one of those moved; pictures this stream
    has not sent yet go out as new, and pictures whose tile changed (an operator's disposition)
    go out again to be replaced in place. The newest flagged result matters because the gallery
    shows more than defects: a damaged parcel is flagged although it is no defect (``is_defect``
    false or empty), so the defect count stays put when one comes.
    """

    def __init__(self, line: str, range_key: str, parts: Template, can_act: bool = False) -> None:
        self.line = line
        self.range = range_of(range_key)
        self.can_act = can_act
        self._parts = parts.module  # the macros of line_parts.html, shared with the page itself
        self._sent: dict[str, str] = {}
        self._defect_key: tuple[Any, ...] | None = None
        self._tiles: dict[str, str] = {}  # the gallery's tiles as last sent, by result id

    async def tick(self, api: ApiClient) -> dict[str, Any] | None:
        """The changed fragments of the page (None: nothing changed since the last tick)."""
        charts = await line_stats(api, self.line, self.range)
        parts: dict[str, Any] = self._module_parts(charts)
        parts["drift"] = self._render("drift", await line_drift(api, self.line))
        new, redrawn = await self._gallery_changes(api, charts["stats"])
        changed = {k: v for k, v in parts.items() if self._sent.get(k) != v}
        self._sent.update(changed)
        if not changed and not new and not redrawn:
            return None
        update = {"at": utcnow().isoformat(), "parts": changed, "gallery": new, "redrawn": redrawn}
        return {**update, "keep": GALLERY_SIZE}

    async def _gallery_changes(
        self, api: ApiClient, stats: dict[str, Any]
    ) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
        """(new tiles, tiles drawn differently than last sent), each {id, html}, oldest first."""
        last = stats["buckets"][-1] if stats["buckets"] else {}
        newest = await api.get(f"/lines/{quote(self.line)}/defects", limit=1)
        judged = (await api.get("/dispositions", line=self.line, limit=1))["items"]
        key = (
            stats["defects"], last.get("start"), last.get("defects"), newest and newest[0]["id"],
            judged and (judged[0]["result_id"], judged[0]["at"]),
        )  # fmt: skip
        if key == self._defect_key:
            return [], []
        self._defect_key = key
        gallery = await line_gallery(api, self.line, self.can_act)
        new, redrawn, tiles = [], [], {}
        for item in reversed(gallery["gallery"]):  # oldest first: the client prepends each in turn
            tile = {"id": item["id"], "html": self._render("figure", item)}
            if item["id"] not in self._tiles:
                new.append(tile)
            elif self._tiles[item["id"]] != tile["html"]:
                redrawn.append(tile)
            tiles[item["id"]] = tile["html"]
        self._tiles = tiles  # pictures that left the gallery never come back: forget them
        return new, redrawn

    def _render(self, macro: str, *args: Any) -> str:
        return str(getattr(self._parts, macro)(*args))

    def _module_parts(self, charts: dict[str, Any]) -> dict[str, Any]:
        return {
            "totals": self._render("totals", charts["stats"]),
            "charts": self._render(
                "charts", charts["counts"], charts["rates"], charts["labels"], charts["stats"]
            ),
            "breakdown": self._render("breakdown", charts["breakdown"], charts["stats"]),
            "notes": self._render("notes_summary", charts["notes"]),
        }
