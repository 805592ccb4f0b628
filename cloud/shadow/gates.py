"""Promotion gated on shadow evidence: a rollout with ``gates`` starts only when the version's
shadow run on each of its gateways passed them.

Judged per gateway, on the comparison records of the champion it serves now and this challenger
(:func:`cloud.shadow.service.status`): frames compared, flag-rate shift, agreement, latency, the
challenger's errors, and who was right on the disagreements an operator labelled. A gate that
cannot be judged (no shadow run, no flag rates for a model that is not a defect model, too few
labels) fails: a promotion must be earned by evidence, not granted for the lack of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db.dataset_models import DatasetFile
from cloud.db.models import Rollout, RolloutEvent
from cloud.ota.lineage import GATES_EVENT
from cloud.ota.schemas import GateValue, ShadowGates
from cloud.shadow.schemas import ShadowSlotStatus
from cloud.shadow.service import status
from protocol.captures import LABEL_GOOD, LABEL_SKIP
from protocol.messages import utcnow


@dataclass(frozen=True)
class GatewayVerdict:
    """One gateway's shadow evidence against each gate that is on."""

    gateway_id: str
    gates: list[GateValue]

    @property
    def passed(self) -> bool:
        return all(g.ok for g in self.gates)

    def missed(self) -> str:
        """The gates it missed, with what was measured: "min_frames 120 < 500, ..."."""
        return ", ".join(_said(g) for g in self.gates if not g.ok)


@dataclass(frozen=True)
class Labelled:
    """Disagreements an operator labelled, and how many of them the challenger got right."""

    frames: int
    challenger_right: int


def judge(session: Session, rollout: Rollout, gates: ShadowGates) -> list[GatewayVerdict]:
    """Each planned gateway of ``rollout`` judged on its shadow run of the rollout's version."""
    rows = {
        r.gateway_id: r
        for r in status(session, model=rollout.model_name, version=rollout.version)
        if r.slot == rollout.slot
    }
    verdicts = []
    for gateway_id in sorted(rollout.plan):
        row = rows.get(gateway_id)
        if row is None:
            missing = GateValue(
                gate="shadow_run",
                measured=None,
                limit=None,
                ok=False,
                note=f"{rollout.model_name} {rollout.version} never shadowed slot {rollout.slot} here",
            )
            verdicts.append(GatewayVerdict(gateway_id, [missing]))
            continue
        verdicts.append(GatewayVerdict(gateway_id, _gates(row, gates, _labelled(session, row))))
    return verdicts


def refusal(rollout: Rollout, verdicts: Sequence[GatewayVerdict]) -> str:
    """The 422's reason: each gateway that missed a gate, and by how much."""
    failed = "; ".join(f"{v.gateway_id}: {v.missed()}" for v in verdicts if not v.passed)
    return f"promotion of {rollout.model_name} {rollout.version} refused by its shadow gates: {failed}"


def record(
    session: Session, rollout: Rollout, gates: ShadowGates, verdicts: Sequence[GatewayVerdict]
) -> None:
    """The rollout's log keeps the gates and each gateway's figures that passed them."""
    compared = sum(_measured(v, "min_frames") for v in verdicts)
    session.add(
        RolloutEvent(
            rollout_id=rollout.id,
            at=utcnow(),
            kind=GATES_EVENT,
            message=f"shadow gates passed on {len(verdicts)} gateway(s), {compared:.0f} frames compared",
            details={
                "gates": gates.model_dump(mode="json"),
                "gateways": {v.gateway_id: [g.model_dump(mode="json") for g in v.gates] for v in verdicts},
            },
        )
    )


def _measured(verdict: GatewayVerdict, gate: str) -> float:
    return next((g.measured or 0.0 for g in verdict.gates if g.gate == gate), 0.0)


def _said(g: GateValue) -> str:
    if g.measured is None:
        return f"{g.gate} not judged ({g.note})" if g.note else f"{g.gate} not measured"
    sign = ">=" if g.gate.startswith("min_") else "<="
    text = f"{g.gate} {g.measured:.4g} (needs {sign} {g.limit:.4g})"
    return f"{text}: {g.note}" if g.note else text


def _gates(row: ShadowSlotStatus, gates: ShadowGates, labelled: Labelled) -> list[GateValue]:
    judged = [_at_least("min_frames", row.compared, gates.min_frames)]
    if gates.max_flag_rate_shift is not None:
        judged.append(_flag_shift(row, gates.max_flag_rate_shift))
    if gates.min_agreement is not None:
        judged.append(_at_least("min_agreement", row.agreement, gates.min_agreement))
    if gates.max_p95_ratio is not None:
        ratio = None
        if row.challenger_p95_ms is not None and row.champion_p95_ms:
            ratio = row.challenger_p95_ms / row.champion_p95_ms
        judged.append(
            _at_most("max_p95_ratio", ratio, gates.max_p95_ratio, row.challenger_p95_ms, row.champion_p95_ms)
        )
    if gates.max_p95_ms is not None:
        judged.append(_at_most("max_p95_ms", row.challenger_p95_ms, gates.max_p95_ms))
    if gates.max_error_rate is not None:
        ran = row.compared + row.challenger_errors
        errors = row.challenger_errors / ran if ran else None
        judged.append(_at_most("max_error_rate", errors, gates.max_error_rate))
    if gates.min_labelled_accuracy is not None:
        judged.append(_labelled_gate(row, labelled, gates))
    return judged


def _at_least(gate: str, measured: float | None, limit: float) -> GateValue:
    return GateValue(gate=gate, measured=measured, limit=limit, ok=measured is not None and measured >= limit)


def _at_most(
    gate: str, measured: float | None, limit: float, now: float | None = None, before: float | None = None
) -> GateValue:
    ok = measured is not None and measured <= limit
    return GateValue(gate=gate, measured=measured, limit=limit, ok=ok, now=now, before=before)


def _flag_shift(row: ShadowSlotStatus, limit: float) -> GateValue:
    champion, challenger = row.champion_flag_rate, row.challenger_flag_rate
    if champion is None or challenger is None:
        note = "no flag rates: not a defect model's verdicts, or nothing compared"
        return GateValue(gate="max_flag_rate_shift", measured=None, limit=limit, ok=False, note=note)
    shift = abs(challenger - champion)
    return GateValue(
        gate="max_flag_rate_shift",
        measured=shift,
        limit=limit,
        ok=shift <= limit,
        now=challenger,
        before=champion,
        note=f"champion flags {champion:.1%}, challenger {challenger:.1%}",
    )


def _labelled_gate(row: ShadowSlotStatus, labelled: Labelled, gates: ShadowGates) -> GateValue:
    limit = gates.min_labelled_accuracy
    assert limit is not None  # noqa: S101  # the caller judges this gate only when it is on
    if row.champion_flag_rate is None:
        note = "who was right is known only for a defect model's two verdicts"
        return GateValue(gate="min_labelled_accuracy", measured=None, limit=limit, ok=False, note=note)
    if labelled.frames < gates.min_labelled:
        note = f"{labelled.frames} disagreement(s) labelled, {gates.min_labelled} needed"
        return GateValue(gate="min_labelled_accuracy", measured=None, limit=limit, ok=False, note=note)
    accuracy = labelled.challenger_right / labelled.frames
    note = f"challenger right on {labelled.challenger_right} of {labelled.frames} labelled disagreements"
    return GateValue(
        gate="min_labelled_accuracy", measured=accuracy, limit=limit, ok=accuracy >= limit, note=note
    )


def _labelled(session: Session, row: ShadowSlotStatus) -> Labelled:
    """The disagreement captures' frames an operator labelled. A capture file keeps the champion's
    label; on a defect model's two verdicts the challenger said the other one, so it was right
    whenever the operator's good-or-not differs from the champion's."""
    if not row.disagreement_captures:
        return Labelled(0, 0)
    files = session.scalars(
        select(DatasetFile).where(
            DatasetFile.dataset_id.in_(row.disagreement_captures),
            DatasetFile.label.is_not(None),
            DatasetFile.label != LABEL_SKIP,
        )
    ).all()
    known = [f for f in files if f.model_label is not None]
    right = sum((f.label == LABEL_GOOD) != (f.model_label == LABEL_GOOD) for f in known)
    return Labelled(len(known), right)
