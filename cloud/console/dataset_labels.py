"""What the Dataset page's label bar offers, and what its labelling request carries.

The defect kinds come from the model that served the dataset's slot when it was captured (its
manifest's labels, less the good one and an anomaly model's own verdict), so an operator picks a
kind the model can learn. Without such a model (unknown to the registry, or an anomaly model with
no kinds) the kinds already used in the dataset are offered, with a field for a new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import Request

from cloud.console.api import ApiClient, ApiError
from cloud.console.session import MAX_FORM_BYTES
from cloud.datasets.service import UNLABELLED
from cloud.request_body import read_capped
from protocol.captures import LABEL_GOOD, LABEL_SKIP

ANOMALY = "anomaly"  # an anomaly model's verdict, never a kind (the API refuses it as a label)
NOT_KINDS = {LABEL_GOOD, LABEL_SKIP, UNLABELLED, ANOMALY}
SHORTCUT_KINDS = 9  # keys 1..9


@dataclass(frozen=True)
class LabelChoices:
    """The defect kinds offered (in order: key 1, 2, ...) and whether the model named them."""

    kinds: list[str]
    from_model: bool


async def label_choices(api: ApiClient, dataset: dict[str, Any]) -> LabelChoices:
    """The kinds of the dataset's model when the registry knows it, else those used so far."""
    model = dataset.get("model") or {}
    if model.get("name") and model.get("version"):
        path = (
            f"/models/{quote(str(model['name']), safe='')}/versions/{quote(str(model['version']), safe='')}"
        )
        try:
            manifest = (await api.get(path)).get("manifest") or {}
        except ApiError as exc:
            if exc.status != 404:  # a model pushed elsewhere is no error; anything else is
                raise
            manifest = {}
        good = manifest.get("good_label")
        kinds = [str(k) for k in manifest.get("labels") or [] if k != good and k not in NOT_KINDS]
        if kinds:
            return LabelChoices(kinds, from_model=True)
    used = sorted(str(k) for k in dataset.get("labels") or {} if k not in NOT_KINDS)
    return LabelChoices(used, from_model=False)


def label_counts(labels: dict[str, int], frames: int) -> dict[str, int]:
    """Frames with a label of their own, and without (the page's running count)."""
    unlabelled = int(labels.get(UNLABELLED, 0))
    return {"labelled": frames - unlabelled, "unlabelled": unlabelled}


class LabelRequestError(ValueError):
    """The label bar's request names no label or no frame."""


async def label_request(request: Request) -> tuple[str, list[str]]:
    """(label, files) of the label bar's urlencoded post: ``label=good&file=a.png&file=b.png``."""
    body = await read_capped(request, MAX_FORM_BYTES, "console label request")
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    label = (fields.get("label") or [""])[-1].strip()
    files = [f for f in fields.get("file", []) if f]
    if not label:
        raise LabelRequestError("choose a label: good, skip or a defect kind")
    if not files:
        raise LabelRequestError("select at least one frame to label")
    return label, files
