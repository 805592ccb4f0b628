"""What a score means: each task's result in words, with the raw numbers behind it, from what the
gateway sends (and from what an older gateway sent without a threshold)."""

from __future__ import annotations

from typing import Any

import pytest

from cloud.console.score_meaning import score_meaning, score_meaning_html
from protocol.inference import normalized_score
from protocol.messages import ClassificationOutput, DefectOutput, NotesOutput, ParcelOutput, TaskOutput


def _result(output: TaskOutput) -> dict[str, Any]:
    """A result as the API returns it (its output as stored JSON)."""
    return {"label": output.label, "score": output.score, "output": output.model_dump(mode="json")}


def _anomaly(raw: float, threshold: float, *, send_threshold: bool = True) -> DefectOutput:
    squashed = round(normalized_score(raw, threshold), 6)
    flagged = raw >= threshold
    extra = {"raw_score": raw, "threshold": threshold} if send_threshold else {}
    return DefectOutput(
        label="anomaly" if flagged else "good", is_defect=flagged,
        score=squashed if flagged else round(1 - squashed, 6),
        scores={"anomaly": squashed, "good": round(1 - squashed, 6)}, **extra,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        (52.7, "1.4× threshold · defect"),
        (37.66, "1.00× threshold · defect"),  # exactly at the threshold is a defect
        (37.6, "0.998× threshold · good"),  # never "1.00" for a part that passed
        (38.0, "1.01× threshold · defect"),
        (11.3, "0.3× threshold · good"),
        (400.0, "10.6× threshold · defect"),
    ],
)
def test_an_anomaly_score_reads_as_a_multiple_of_the_threshold(raw: float, said: str) -> None:
    meaning = score_meaning(_result(_anomaly(raw, 37.66)))
    assert meaning.text == said
    assert meaning.flagged == (raw >= 37.66)
    assert f"anomaly score {raw:.4g} against the threshold 37.66" in meaning.detail


def test_an_older_gateways_anomaly_score_still_reads_as_a_multiple() -> None:
    # 0.56 on the wire, the example: raw / threshold = 0.56 / 0.44.
    meaning = score_meaning(_result(_anomaly(0.56 / 0.44, 1.0, send_threshold=False)))
    assert meaning.text == "1.3× threshold · defect"
    assert "the gateway sent no threshold" in meaning.detail


def test_a_type_head_flag_under_the_threshold_says_so() -> None:
    flagged = _anomaly(30.0, 37.66).model_copy(update={"is_defect": True, "label": "scratch"})
    assert score_meaning(_result(flagged)).text == "0.8× threshold · defect (by its defect type)"


def test_a_classifier_score_reads_as_a_probability_beside_its_cut_off() -> None:
    defect = DefectOutput(label="scratch", is_defect=True, score=0.83, scores={"good": 0.1, "scratch": 0.83},
                          threshold=0.5)  # fmt: skip
    assert score_meaning(_result(defect)).text == "83% likely (cut-off 50%) · defect"
    under = DefectOutput(label="good", is_defect=False, score=0.3, scores={"good": 0.3, "scratch": 0.698},
                         threshold=0.7)  # fmt: skip
    said = score_meaning(_result(under))
    assert said.text == "scratch 69.8%, under its 70.0% cut-off · good"
    assert not said.flagged
    plain = DefectOutput(label="good", is_defect=False, score=0.93, scores={"good": 0.93, "scratch": 0.07})
    assert score_meaning(_result(plain)).text == "93% likely · good"


def test_a_parcel_says_damaged_or_intact_beside_its_damage_score_and_cut_off() -> None:
    damaged = ParcelOutput(label="reject", score=0.97, track_id=3, damaged=True, damage_score=0.712,
                           damage_threshold=0.4447)  # fmt: skip
    meaning = score_meaning(_result(damaged))
    assert (meaning.text, meaning.flagged) == ("damaged · damage 0.71 (cut-off 0.44)", True)
    assert "detector 0.97 sure it is a parcel" in meaning.detail
    intact = ParcelOutput(
        label="lane_1", score=0.97, track_id=4, damage_score=0.4446, damage_threshold=0.4447
    )
    assert score_meaning(_result(intact)).text == "intact · damage 0.4446 (cut-off 0.4447)"
    older = ParcelOutput(label="reject", score=0.97, track_id=5, damaged=True)
    assert score_meaning(_result(older)).text == "damaged"


def test_a_note_and_a_classification_read_as_probabilities() -> None:
    note = NotesOutput(
        label="electrical", score=0.83, category="electrical", urgency="high", urgency_score=0.71
    )
    assert score_meaning(_result(note)).text == "electrical (83% likely) · high urgency (71%)"
    assert score_meaning(_result(ClassificationOutput(label="box", score=0.7))).text == "70% likely"


def test_the_html_keeps_the_raw_numbers_in_its_title_and_escapes_them() -> None:
    html = str(score_meaning_html(_result(_anomaly(52.7, 37.66))))
    assert html.startswith('<span class="score-meaning flagged" title="anomaly score 52.7 against')
    assert html.endswith(">1.4× threshold · defect</span>")
    hostile = DefectOutput(label="good", is_defect=False, score=0.9, scores={"good": 0.9})
    result = _result(hostile) | {"output": {**_result(hostile)["output"], "label": "<b>x</b>"}}
    assert "<b>" not in str(score_meaning_html(result))
