"""What the Overview shows per line, gathered from the API (also pushed over SSE)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from cloud.console.api import ApiClient
from cloud.console.line_tasks import NOTES, split_stats, stats_path
from protocol.messages import utcnow

WINDOW = timedelta(hours=1)
BUCKET_S = 60
THROUGHPUT_MINUTES = 5  # throughput is averaged over the last few whole minutes, not the hour


def _line_models(gateways: list[dict[str, Any]]) -> list[str]:
    seen = {f"{m.get('name')} {m.get('version')}" for gw in gateways if gw["online"] for m in gw["models"]}
    return sorted(seen)


async def _first_result_at(api: ApiClient, line: str, task: str, start: str, now: datetime) -> datetime:
    """The start of the first second holding a ``task`` result of ``line`` from ``start`` (a bucket's
    start) on."""
    until = min(datetime.fromisoformat(start) + timedelta(seconds=BUCKET_S), now)
    fine = await api.get(stats_path(line), since=start, until=until.isoformat(), interval_s=1, task=task)
    first = next((b["start"] for b in fine["buckets"] if b["results"]), start)
    return datetime.fromisoformat(first)


async def throughput_per_min(
    api: ApiClient, line: str, task: str, counts: list[tuple[str, int]], now: datetime
) -> float:
    """``task`` results per minute over the last few minutes, divided by the time they actually cover.

    ``counts`` are (bucket start, results of the task) per minute. Right after start-up the line
    has reported for less than the averaging window: dividing by the whole window would show a
    fraction of the real rate. The first result's second is looked up (one small query) only when
    it falls inside the window.
    """
    recent = counts[-THROUGHPUT_MINUTES:]
    count = sum(n for _, n in recent)
    if not recent or not count:
        return 0.0
    window_start = datetime.fromisoformat(recent[0][0])
    earlier = any(n for _, n in counts[: -len(recent)])
    start = window_start
    if not earlier:
        first = next(at for at, n in recent if n)
        start = max(window_start, await _first_result_at(api, line, task, first, now))
    covered_min = max((now - start).total_seconds(), 1.0) / 60
    return count / covered_min


async def _notes_figures(api: ApiClient, line: str, every: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The line's maintenance notes of the hour, counted apart from its production figures."""
    counts = [(b["start"], int(b["notes"])) for b in every["buckets"]]
    per_min = await throughput_per_min(api, line, NOTES, counts, now) if every["notes"] else 0.0
    return {
        "notes": bool(every["notes"]),
        "notes_hour": every["notes"],
        "notes_per_min": round(per_min, 1),
        "urgent_notes_hour": every["urgent_notes"],
    }


async def overview(api: ApiClient) -> dict[str, Any]:
    """One tile per line: throughput, last-hour defect (or damaged-parcel) rate and its per-minute
    series of the line's production task, gateways, alerts, and its maintenance notes apart."""
    now = utcnow()
    lines = await api.get("/lines")
    gateways = await api.get("/gateways")
    alerts = await api.get("/alerts", state="open")
    tiles = []
    for entry in lines:
        line = entry["line"]
        stats, every = await split_stats(
            api, line, since=(now - WINDOW).isoformat(), until=now.isoformat(), interval_s=BUCKET_S
        )
        buckets = stats["buckets"]
        counts = [(b["start"], int(b["results"])) for b in buckets]
        per_min = await throughput_per_min(api, line, stats["task"], counts, now)
        on_line = [gw for gw in gateways if gw["line"] == line]
        parcels = bool(stats.get("parcels")) and not stats["inspected"]
        tiles.append(
            {
                "line": line,
                "results_hour": stats["results"],
                "throughput_per_min": round(per_min, 1),
                "defect_rate": stats["defect_rate"],
                "defects_hour": stats["defects"],
                # A parcel line inspects nothing for defects: its rate is the damaged parcels'.
                "parcels": parcels,
                "damaged_rate": stats.get("damaged_rate"),
                "damaged_hour": stats.get("damaged", 0),
                "series": [b.get("damaged_rate") if parcels else b["defect_rate"] for b in buckets],
                "models": _line_models(on_line),
                "gateways_online": sum(1 for gw in on_line if gw["online"]),
                "gateways_offline": sum(1 for gw in on_line if not gw["online"]),
                "open_alerts": sum(1 for a in alerts if a["line"] == line),
                "last_result_at": entry["last_result_at"],
                **await _notes_figures(api, line, every, now),
            }
        )
    # alerts_available is part of the summary's format; alerts are always served.
    return {"at": now.isoformat(), "alerts_available": True, "lines": tiles}
