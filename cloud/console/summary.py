"""What the Overview shows per line, gathered from the API (also pushed over SSE)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cloud.console.api import ApiClient
from protocol.messages import utcnow

WINDOW = timedelta(hours=1)
BUCKET_S = 60
THROUGHPUT_MINUTES = 5  # throughput is averaged over the last few whole minutes, not the hour


def _line_models(gateways: list[dict[str, Any]]) -> list[str]:
    seen = {f"{m.get('name')} {m.get('version')}" for gw in gateways if gw["online"] for m in gw["models"]}
    return sorted(seen)


async def overview(api: ApiClient) -> dict[str, Any]:
    """One tile per line: throughput, last-hour defect rate and its per-minute series, gateways, alerts."""
    now = utcnow()
    lines = await api.get("/lines")
    gateways = await api.get("/gateways")
    alerts = await api.get_or(None, "/alerts", state="open")
    tiles = []
    for entry in lines:
        line = entry["line"]
        stats = await api.get(
            f"/lines/{line}/stats",
            since=(now - WINDOW).isoformat(),
            until=now.isoformat(),
            interval_s=BUCKET_S,
        )
        buckets = stats["buckets"]
        # Buckets are whole minutes ending now (they align to 'since'), so the last ones are complete.
        recent = buckets[-THROUGHPUT_MINUTES:]
        per_min = sum(b["results"] for b in recent) / max(len(recent), 1)
        on_line = [gw for gw in gateways if gw["line"] == line]
        tiles.append(
            {
                "line": line,
                "results_hour": stats["results"],
                "throughput_per_min": round(per_min, 1),
                "defect_rate": stats["defect_rate"],
                "defects_hour": stats["defects"],
                "series": [b["defect_rate"] for b in buckets],
                "models": _line_models(on_line),
                "gateways_online": sum(1 for gw in on_line if gw["online"]),
                "gateways_offline": sum(1 for gw in on_line if not gw["online"]),
                "open_alerts": None if alerts is None else sum(1 for a in alerts if a["line"] == line),
                "last_result_at": entry["last_result_at"],
            }
        )
    return {"at": now.isoformat(), "alerts_available": alerts is not None, "lines": tiles}
