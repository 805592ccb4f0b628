"""The demo's status line: gateways online, results stored per line, and a stall warning.

Counts that stop growing while gateways are online mean results are not being stored (most
often the ingest worker is down); the line says so instead of repeating frozen numbers.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

STALL_S = 30.0  # no new stored result for this long, with gateways online, is worth a word


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own local URL
        return json.load(response)


class StatusLine:
    """Builds successive status lines and remembers when the stored-results count last grew."""

    def __init__(self, ingest_log: Path, stall_s: float = STALL_S) -> None:
        self.ingest_log = ingest_log
        self.stall_s = stall_s
        self._count: int | None = None
        self._grew_at = 0.0

    def text(self, online: int, total: int, per_line: dict[str, int], now: float) -> str:
        """The line for ``online`` of ``total`` gateways and ``per_line`` stored results at ``now``
        (monotonic seconds)."""
        count = sum(per_line.values())
        # With no gateway online nothing is expected, so the stall clock starts again from now.
        if self._count is None or count > self._count or online == 0:
            self._grew_at = now
        self._count = count
        shown = ", ".join(f"{line}: {n}" for line, n in per_line.items()) or "none yet"
        line = f"{online}/{total} gateways online; results stored per line: {shown}"
        stalled = now - self._grew_at
        if stalled >= self.stall_s:
            line += f"; no new results stored for {stalled:.0f} s: is ingest running? see {self.ingest_log}"
        return line

    def poll(self, api_url: str, now: float) -> str:
        """Ask the API and return the line (or why the API did not answer)."""
        try:
            gateways = _get_json(f"{api_url}/api/v1/gateways")
            lines = _get_json(f"{api_url}/api/v1/lines")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return f"API not answering ({exc})"
        online = sum(1 for gw in gateways if gw.get("online"))
        per_line = {str(entry["line"]): int(entry["results"]) for entry in lines}
        return self.text(online, len(gateways), per_line, now)
