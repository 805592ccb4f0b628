"""What a result's score means to a shift lead: a verdict beside what it was judged against.

A bare wire score says little: an anomaly model's 0.56 is its raw distance squashed into [0, 1)
(0.5 at the threshold, ``protocol.inference.normalized_score``), a parcel's score is the detector's
confidence that it is a parcel at all. So the console shows an anomaly score as a multiple of the
threshold ("1.4× threshold · defect"), a classifier's as a probability beside its cut-off, a
parcel's damage score beside its cut-off, and keeps the raw numbers for the hover text. Every page
that shows a result's score shows it through :func:`score_meaning` (the ``score_meaning`` filter).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from protocol.inference import ANOMALY_LABEL


@dataclass(frozen=True)
class Meaning:
    """``text``: what the page shows; ``detail``: the raw numbers behind it (hover); ``flagged``: bad."""

    text: str
    detail: str
    flagged: bool


def _number(value: float, digits: int) -> str:
    return f"{value:.{digits}f}"


def _percent(value: float, digits: int) -> str:
    return f"{100 * value:.{max(digits - 2, 0)}f}%"


def _beside(value: float, cut: float, shown: Callable[[float, int], str], digits: int = 2) -> tuple[str, str]:
    """``value`` and ``cut`` as text, with the digits it takes for the text to fall on the side of
    the cut that the numbers do: 0.997 against 1.0 must not read as "1.00" against "1.00"."""
    for more in range(digits, digits + 4):
        a, b = shown(value, more), shown(cut, more)
        number_a, number_b = (float(t.rstrip("%")) for t in (a, b))
        if (number_a >= number_b) == (value >= cut):
            return a, b
    return shown(value, digits + 4), shown(cut, digits + 4)


def _multiple(raw: float, threshold: float) -> str:
    """``raw / threshold`` to one decimal, or two near 1 so a part just under it never reads 1.0."""
    ratio = raw / threshold
    digits = 2 if 0.9 <= ratio < 1.1 else 1
    return _beside(ratio, 1.0, _number, digits)[0]


def _anomaly(output: Mapping[str, Any], is_defect: bool) -> Meaning | None:
    """An anomaly graph's result as a multiple of its threshold; None if it is not one."""
    raw, threshold = output.get("raw_score"), output.get("threshold")
    word = "defect" if is_defect else "good"
    if isinstance(raw, int | float) and isinstance(threshold, int | float) and threshold > 0:
        multiple = _multiple(float(raw), float(threshold))
        detail = (
            f"anomaly score {raw:.4g} against the threshold {threshold:.4g}; "
            "a part is a defect from 1.0× the threshold up"
        )
    else:
        # An older agent sent no threshold: the normalised score s = raw / (raw + threshold) still
        # gives the multiple, raw / threshold = s / (1 - s).
        squashed = (output.get("scores") or {}).get(ANOMALY_LABEL)
        if not isinstance(squashed, int | float) or not 0 <= squashed < 1:
            return None
        multiple = _multiple(float(squashed), 1.0 - float(squashed))
        detail = (
            f"normalised anomaly score {squashed:.3f} (0.5 at the threshold); the gateway sent no threshold"
        )
    below = is_defect and float(multiple) < 1.0
    text = f"{multiple}× threshold · {word}" + (" (by its defect type)" if below else "")
    return Meaning(text, detail, is_defect)


def _classifier(output: Mapping[str, Any], label: str, score: float, is_defect: bool) -> Meaning:
    """A classifier's result: the probability it judged, beside the cut-off it was judged against."""
    threshold, scores = output.get("threshold"), dict(output.get("scores") or {})
    word = "defect" if is_defect else "good"
    if not isinstance(threshold, int | float):
        detail = f"the model's probability of {label}; no cut-off came with this result"
        return Meaning(f"{_percent(score, 2)} likely · {word}", detail, is_defect)
    if is_defect:
        judged, probability = label, float(scores.get(label, score))
    else:  # a defect label was on top but under its cut-off: say which, and by how much
        judged, probability = max(((k, float(v)) for k, v in scores.items() if k != label), key=lambda kv: kv[1],
                                  default=(label, score))  # fmt: skip
    shown, cut = _beside(probability, float(threshold), _percent)
    detail = f"the model's probability of {judged}, {probability:.4f}, against its cut-off {threshold:.4f}"
    if is_defect:
        return Meaning(f"{shown} likely (cut-off {cut}) · defect", detail, True)
    return Meaning(f"{judged} {shown}, under its {cut} cut-off · good", detail, False)


def _parcel(output: Mapping[str, Any], score: float) -> Meaning:
    damaged = bool(output.get("damaged"))
    word = "damaged" if damaged else "intact"
    damage, threshold = output.get("damage_score"), output.get("damage_threshold")
    confidence = f"detector {score:.2f} sure it is a parcel"
    if isinstance(damage, int | float) and isinstance(threshold, int | float):
        shown, cut = _beside(float(damage), float(threshold), _number)
        detail = f"mean damage score over the frames the parcel was wholly in view; {confidence}"
        return Meaning(f"{word} · damage {shown} (cut-off {cut})", detail, damaged)
    return Meaning(word, f"no damage score came with this result; {confidence}", damaged)


def _notes(output: Mapping[str, Any], label: str, score: float) -> Meaning:
    category, urgency = output.get("category") or label, output.get("urgency") or "-"
    urgency_score = float(output.get("urgency_score") or 0.0)
    text = f"{category} ({_percent(score, 2)} likely) · {urgency} urgency ({_percent(urgency_score, 2)})"
    detail = "the model's probabilities of the category and of the urgency; the likeliest of each is taken"
    return Meaning(text, detail, False)


def score_meaning(result: Mapping[str, Any]) -> Meaning:
    """What ``result`` (an API result or gallery item: ``label``, ``score``, ``output``) means."""
    output: Mapping[str, Any] = result.get("output") or {}
    label = str(output.get("label") or result.get("label") or "-")
    score = float(output.get("score", result.get("score")) or 0.0)
    kind = output.get("kind")
    if kind == "defect":
        is_defect = bool(output.get("is_defect"))
        # An anomaly graph's result carries its raw score; an older agent's only its anomaly label.
        older = output.get("threshold") is None and ANOMALY_LABEL in (output.get("scores") or {})
        anomaly = _anomaly(output, is_defect) if output.get("raw_score") is not None or older else None
        return anomaly or _classifier(output, label, score, is_defect)
    if kind == "parcel":
        return _parcel(output, score)
    if kind == "notes":
        return _notes(output, label, score)
    return Meaning(f"{_percent(score, 2)} likely", f"the model's probability of {label}", False)


def score_meaning_html(result: Mapping[str, Any]) -> Markup:
    """The meaning as a ``<span class="score-meaning">`` whose title holds the raw numbers (escaped)."""
    said = score_meaning(result)
    css = "score-meaning flagged" if said.flagged else "score-meaning"
    return Markup('<span class="{}" title="{}">{}</span>').format(css, said.detail, said.text)
