"""MODEL_CARD.md of the bundled anomaly model, and the tables a user-trained card shares (no torch).

The words are in ``domain_models/templates/anomaly_card.md.j2`` and ``anomaly_types.md.j2``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from domain_models.anomaly.evaluate import AnomalyReport
from domain_models.anomaly.gate import GateCheck
from domain_models.anomaly.type_eval import TypeReport
from domain_models.cards import cpu_count, render
from domain_models.common import LATENCY_HEADERS, markdown_table


def figures_table(reports: Mapping[str, AnomalyReport]) -> str:
    """One row of held-out figures per named report."""
    rows = [
        [
            name,
            r.images,
            r.image_auroc,
            "n/a" if r.pixel_auroc is None else f"{r.pixel_auroc:.4f}",
            r.precision,
            r.recall,
            r.f1,
            r.false_reject_rate,
        ]
        for name, r in reports.items()
    ]
    headers = ["set", "images", "image AUROC", "pixel AUROC", "precision", "recall", "F1", "false rejects"]
    return markdown_table(headers, rows)


def per_type_table(reports: Mapping[str, AnomalyReport]) -> str:
    """Image AUROC and recall of each defect type, per named report."""
    rows = [
        [name, kind, f.count, f.image_auroc, f.recall]
        for name, r in reports.items()
        for kind, f in r.per_type.items()
    ]
    return markdown_table(["set", "defect", "n", "image AUROC", "recall at threshold"], rows)


def type_section(report: TypeReport | None) -> str:
    """The card's section on the supervised type head; empty for a model without one."""
    if report is None:
        return ""
    labels = sorted({label for row in report.confusion.values() for label in row})
    return render(
        "anomaly_types.md.j2",
        r=report,
        chance=1 / max(len(report.types), 1),
        labels=labels,
        per_type=[[t, f.count, f.precision, f.recall] for t, f in report.per_type.items()],
        confusion=[
            [kind, *(row.get(x, 0) for x in labels)] for kind, row in sorted(report.confusion.items())
        ],
        decision=[
            ["threshold alone", report.f1_without_head, report.false_rejects_without_head],
            ["as shipped", report.f1_with_head, report.false_rejects_with_head],
            *[[f"head also flags at p >= {k}", f1, fr] for k, (f1, fr) in report.head_flag_sweep.items()],
        ],
        unseen=[
            [k, u.count, u.flagged_with_head, u.flagged_without_head, u.labelled_anomaly]
            for k, u in report.unseen.items()
        ],
    )


def write_card(
    path: Path,
    *,
    facts: Mapping[str, object],
    reports: Mapping[str, AnomalyReport],
    heads: Mapping[str, float],
    checks: Sequence[GateCheck],
    tolerance: float,
    refusal: str | None,
    diagnosis: str,
    latency: Sequence[Sequence[str]],
    command: str,
    unseen_auroc: float,
    frr: float,
    refit_held_out: int | None,
    types: TypeReport | None = None,
) -> None:
    """Write the card from measured figures only.

    ``tolerance`` is the gate's, in points; ``refusal`` its reason when INT8 was refused (None: it
    shipped); ``unseen_auroc`` the seen-line model's image AUROC on the unseen look;
    ``refit_held_out`` the good frames that set the re-fit model's threshold (None: no re-fit row).
    """
    text = render(
        "anomaly_card.md.j2",
        heads=[[name, auroc] for name, auroc in heads.items()],
        facts=[[k, v] for k, v in facts.items()],
        figures=figures_table(reports),
        per_type=per_type_table(reports),
        refusal=refusal,
        tolerance=tolerance,
        gate=[c.describe() for c in checks],
        diagnosis=diagnosis,
        cpus=cpu_count(),
        latency_headers=LATENCY_HEADERS,
        latency=latency,
        type_section=type_section(types),
        unseen_auroc=unseen_auroc,
        frr=frr,
        refit_held_out=refit_held_out,
        command=command,
    )
    path.write_text(text)
