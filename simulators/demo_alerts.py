"""Seeds the demo's alert rules, so the console's Alerts page is not empty on a first visit.

What a plant would start with. A camera line alerts when its defect rate runs well above what the
simulated lines inject (15 %): 25 % over ten minutes, on at least 200 parts (at 2 parts a second a
window holds about 1,200), so a model that starts flagging good parts shows within minutes and a
few unlucky parts do not. A parcel line has no defect rate (its results are parcels, not
inspections): it alerts when its gateway has been silent for two minutes (telemetry comes every
few seconds). A camera line also alerts when a slot's drift is confirmed (its releases carry a
drift reference, and the console's look switch exists to show what a new look does); a parcel
line's slots are not watched for drift, so it gets no such rule.

Made through the API with the demo's admin token, as an admin would, so the audit log holds it. A
line that already has a rule of that kind keeps it and gets none added: a restarted demo on the
same database duplicates nothing, and an admin's edit stays.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from simulators.fleet import VirtualGateway

DEFECT_RATE_RULE: dict[str, Any] = {
    "kind": "defect_rate",
    "threshold": 25.0,
    "window_s": 600.0,
    "min_results": 200,
}
SILENT_GATEWAY_RULE: dict[str, Any] = {"kind": "gateway_offline", "threshold": 120.0}
DRIFT_RULE: dict[str, Any] = {"kind": "model_drift", "threshold": 2.0}  # level 2: confirmed drift
TIMEOUT_S = 10.0
# (method, path under /api/v1, JSON body or None) -> the answer's JSON; raises on an HTTP error.
ApiCall = Callable[[str, str, dict[str, Any] | None], Any]


def demo_rules(gateways: Sequence[VirtualGateway]) -> dict[str, dict[str, Any]]:
    """The rule of each line the gateways watch: a defect-rate rule where a camera inspects parts."""
    rules: dict[str, dict[str, Any]] = {}
    for gw in gateways:
        camera = gw.kind != "parcels"
        if camera or gw.line not in rules:
            rules[gw.line] = {"line": gw.line, **(DEFECT_RATE_RULE if camera else SILENT_GATEWAY_RULE)}
    return dict(sorted(rules.items()))


def drift_rules(gateways: Sequence[VirtualGateway]) -> dict[str, dict[str, Any]]:
    """A model_drift rule on each line a camera gateway inspects."""
    lines = sorted({gw.line for gw in gateways if gw.kind != "parcels"})
    return {line: {"line": line, **DRIFT_RULE} for line in lines}


def api_caller(api_url: str, token: str) -> ApiCall:
    """Calls of the API at ``api_url`` with ``token``, over HTTP."""

    def call(method: str, path: str, body: dict[str, Any] | None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{api_url}/api/v1{path}", data=data, method=method)  # noqa: S310
        request.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 - our own API
            return json.load(response)

    return call


def seed_alert_rules(call: ApiCall, gateways: Sequence[VirtualGateway]) -> list[str]:
    """Create each line's rules unless the line has one of that kind; return what was created."""
    existing = {(rule["line"], rule["kind"]) for rule in call("GET", "/alert-rules", None)}
    made = []
    for line, rule in [*demo_rules(gateways).items(), *drift_rules(gateways).items()]:
        if (line, rule["kind"]) not in existing:
            call("POST", "/alert-rules", rule)
            limit = "when confirmed" if rule["kind"] == DRIFT_RULE["kind"] else f"above {rule['threshold']:g}"
            made.append(f"{line}: {rule['kind']} {limit}")
    return made
