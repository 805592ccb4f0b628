"""Which line a gateway is on is the cloud's fact, not the gateway's claim.

A gateway's first birth (or first results) proposes its line; after that only an admin moves it
(``PATCH /gateways/{id}``, audited). A birth or a result claiming another line is stored under
the recorded one, with a dead letter saying so (reason code ``line_claim``): a misconfigured or
hostile gateway cannot put itself into another line's statistics, alerts or rollout targets.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db.models import Gateway
from cloud.ingest.decode import Decoded, Rejected
from protocol.messages import GatewayState, ResultBatch

LINE_CLAIM = "line_claim"


@dataclass
class SettledLines:
    """The messages with results moved under each gateway's line, and what was noticed."""

    valid: list[Decoded]
    proposed: dict[str, str] = field(default_factory=dict)  # gateway -> line of its first claim
    notices: list[Rejected] = field(default_factory=list)


def _claims(dec: Decoded) -> list[str]:
    if isinstance(dec.message, ResultBatch):
        return [item.line for item in dec.message.items]
    if isinstance(dec.message, GatewayState) and dec.message.line is not None:
        return [dec.message.line]
    return []


def settle_lines(session: Session, valid: Sequence[Decoded]) -> SettledLines:
    """Each claim checked against the recorded line (or the first claim, for a new gateway)."""
    ids = sorted({d.gateway_id for d in valid if _claims(d)})
    if not ids:
        return SettledLines(list(valid))
    rows = session.execute(select(Gateway.id, Gateway.line).where(Gateway.id.in_(ids)))
    recorded: dict[str, str | None] = {gateway_id: line for gateway_id, line in rows}
    settled = SettledLines([])
    for dec in valid:
        claims = _claims(dec)
        if not claims:
            settled.valid.append(dec)
            continue
        line = recorded.get(dec.gateway_id)
        if line is None:
            line = recorded[dec.gateway_id] = settled.proposed[dec.gateway_id] = claims[0]
        wrong = sorted({c for c in claims if c != line})
        if not wrong:
            settled.valid.append(dec)
            continue
        settled.notices.append(_notice(dec, line, wrong, sum(c != line for c in claims)))
        if isinstance(dec.message, ResultBatch):
            items = [i if i.line == line else i.model_copy(update={"line": line}) for i in dec.message.items]
            dec = replace(dec, message=dec.message.model_copy(update={"items": items}))
        settled.valid.append(dec)
    return settled


def _notice(dec: Decoded, line: str, wrong: list[str], count: int) -> Rejected:
    what = "results" if isinstance(dec.message, ResultBatch) else "birth"
    first_seq = dec.message.items[0].seq if isinstance(dec.message, ResultBatch) else None
    return Rejected(
        topic=dec.topic,
        reason_code=LINE_CLAIM,
        reason=f"gateway {dec.gateway_id} is on line {line!r} (the cloud's record; an admin moves it), "
        f"its {what} claimed {', '.join(repr(w) for w in wrong)}: {count} stored under {line!r}",
        payload=json.dumps({"recorded": line, "claimed": wrong, "count": count}).encode(),
        received_at=dec.received_at,
        gateway_id=dec.gateway_id,
        stream=dec.message.stream if isinstance(dec.message, ResultBatch) else None,
        seq=first_seq,
    )
