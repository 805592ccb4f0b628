"""What the Line page shows (charts over a range, defects by type, gallery), and its live feed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from jinja2 import Template

from cloud.console.api import ApiClient
from protocol.messages import utcnow

# Selectable ranges of the Line page: (window, bucket width in seconds).
RANGES = {"1h": (timedelta(hours=1), 60), "6h": (timedelta(hours=6), 600), "24h": (timedelta(days=1), 3600),
          "7d": (timedelta(days=7), 6 * 3600)}  # fmt: skip
GALLERY_SIZE = 24


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


async def line_stats(api: ApiClient, line: str, range_key: str) -> dict[str, Any]:
    """The line's buckets over the range ending now, plus the chart series drawn from them."""
    window, interval = RANGES[range_of(range_key)]
    now = utcnow()
    # Buckets on whole multiples of their width (the last one still filling): successive ticks then
    # draw the same bars, and the live stream sends nothing, until a result or a new bucket comes.
    epoch = int(now.timestamp())
    since = datetime.fromtimestamp(epoch - epoch % interval, UTC) - window + timedelta(seconds=interval)
    stats: dict[str, Any] = await api.get(
        f"/lines/{quote(line)}/stats",
        since=since.isoformat(),
        until=now.isoformat(),
        interval_s=interval,
    )
    return {
        "stats": stats,
        # Exact counts by the database over the whole range, most frequent first.
        "breakdown": list(stats["defects_by_label"].items()),
        "counts": [b["results"] for b in stats["buckets"]],
        "rates": [b["defect_rate"] for b in stats["buckets"]],
        "labels": [b["start"][:16].replace("T", " ") for b in stats["buckets"]],
    }


async def line_gallery(api: ApiClient, line: str) -> dict[str, Any]:
    """The newest defect pictures of the line, each with the CSS placing its anomaly box."""
    gallery: list[dict[str, Any]] = await api.get(f"/lines/{quote(line)}/defects", limit=GALLERY_SIZE)
    for item in gallery:
        item["box_style"] = box_style(item.get("box"), item.get("crop"))
    return {"gallery": gallery}


async def line_context(api: ApiClient, line: str, range_key: str) -> dict[str, Any]:
    """Everything the Line page renders."""
    charts = await line_stats(api, line, range_key)
    defects = await line_gallery(api, line)
    key = range_of(range_key)
    live = f"/console/lines/{quote(line, safe='')}/events?range={key}"
    return {"line": line, "range": key, "ranges": list(RANGES), "live": live, **charts, **defects}


class LineFeed:
    """Successive updates of one line for its live stream, sending only what changed.

    Each tick asks for the line's stats (the buckets and the defects by label, aggregated by the
    database) and for the newest flagged result alone. The gallery is asked for only when one of
    those moved, and only pictures this stream has not sent yet go out. The newest flagged result
    matters because the gallery shows more than defects: a damaged parcel is flagged although it
    is no defect (``is_defect`` false or empty), so the defect count stays put when one comes.
    """

    def __init__(self, line: str, range_key: str, parts: Template) -> None:
        self.line = line
        self.range = range_of(range_key)
        self._parts = parts.module  # the macros of line_parts.html, shared with the page itself
        self._sent: dict[str, str] = {}
        self._defect_key: tuple[Any, ...] | None = None
        self._gallery_ids: set[str] = set()

    async def tick(self, api: ApiClient) -> dict[str, Any] | None:
        """The changed fragments of the page (None: nothing changed since the last tick)."""
        charts = await line_stats(api, self.line, self.range)
        stats = charts["stats"]
        parts: dict[str, Any] = self._module_parts(charts)
        last = stats["buckets"][-1] if stats["buckets"] else {}
        newest = await api.get(f"/lines/{quote(self.line)}/defects", limit=1)
        defect_key = (stats["defects"], last.get("start"), last.get("defects"), newest and newest[0]["id"])
        new: list[dict[str, str]] = []
        if defect_key != self._defect_key:
            gallery = await line_gallery(api, self.line)
            self._defect_key = defect_key
            for item in reversed(gallery["gallery"]):  # oldest first: the client prepends each in turn
                if item["id"] not in self._gallery_ids:
                    self._gallery_ids.add(item["id"])
                    new.append({"id": item["id"], "html": self._render("figure", item)})
        changed = {k: v for k, v in parts.items() if self._sent.get(k) != v}
        self._sent.update(changed)
        if not changed and not new:
            return None
        return {"at": utcnow().isoformat(), "parts": changed, "gallery": new, "keep": GALLERY_SIZE}

    def _render(self, macro: str, *args: Any) -> str:
        return str(getattr(self._parts, macro)(*args))

    def _module_parts(self, charts: dict[str, Any]) -> dict[str, Any]:
        return {
            "totals": self._render("totals", charts["stats"]),
            "charts": self._render(
                "charts", charts["counts"], charts["rates"], charts["labels"], charts["stats"]
            ),
            "breakdown": self._render("breakdown", charts["breakdown"], charts["stats"]),
        }
