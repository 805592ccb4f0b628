"""Notes operators labelled feed the category head: a new phrasing learnt from some labelled notes
is recognised in others of that phrasing, and a bad labelled file is refused before training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from domain_models.cli import main as factory_models
from domain_models.notes.data import DEV, generated, load_jsonl
from domain_models.notes.evaluate import OnnxNotes, score
from domain_models.notes.extra import ExtraNotes, fit_heads_with_extra, load_extra
from domain_models.notes.head import predict
from protocol.inference import NOTE_CATEGORIES


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_labelled_notes_of_a_new_phrasing_teach_the_head_to_read_others_of_it(
    bundled_notes: OnnxNotes, german_notes: tuple[tuple[str, str], ...], tmp_path: Path
) -> None:
    # Every other note of each category is labelled (as exported); the rest are held out.
    labelled = [n for i, n in enumerate(german_notes) if i % 2 == 0]
    held_out = [n for i, n in enumerate(german_notes) if i % 2 == 1]
    extra = load_extra([_write(tmp_path / "labelled.jsonl", [
        {"text": t, "category": c, "model_category": "quality", "labelled_by": "user:ana"} for t, c in labelled
    ])])  # fmt: skip
    assert len(extra) == len(labelled)
    train = generated(360, seed=123)  # the tiny CI retrain of test_notes.py, on the bundled graph
    _, _, x_train = bundled_notes.run(train.texts)
    _, _, x_extra = bundled_notes.run(extra.texts)
    _, _, x_held = bundled_notes.run([t for t, _ in held_out])
    truth = np.array([NOTE_CATEGORIES.index(c) for _, c in held_out])

    def held_out_accuracy(extra_notes: ExtraNotes | None) -> float:
        heads = fit_heads_with_extra(x_train, train.category, train.urgency, x_extra, extra_notes, seed=123)
        got = predict(heads, x_held)[0].argmax(axis=1)
        return float((got == truth).mean())

    without = held_out_accuracy(None)
    with_labels = held_out_accuracy(extra)
    # Measured here: 1 of 14 held-out notes right without the labelled notes, 10 of 14 with them.
    assert without <= 0.5, without  # the generated notes alone do not read this phrasing
    assert with_labels >= 0.6, with_labels
    assert with_labels - without >= 0.3, (without, with_labels)
    # The head still reads the hand-written English notes as before: nothing unlearnt elsewhere.
    dev = load_jsonl(DEV)
    _, _, x_dev = bundled_notes.run(dev.texts)
    heads = fit_heads_with_extra(x_train, train.category, train.urgency, x_extra, extra, seed=123)
    plain = fit_heads_with_extra(x_train, train.category, train.urgency, seed=123)
    assert score(dev, *predict(heads, x_dev)).category_macro_f1 >= (
        score(dev, *predict(plain, x_dev)).category_macro_f1 - 0.05
    )
    # Urgency was not labelled: that head is the one fit on generated notes alone.
    assert np.array_equal(heads.urgency_w, plain.urgency_w)


@pytest.mark.parametrize(
    ("line", "said"),
    [
        (
            '{"text": "Öl tropft", "category": "plumbing"}',
            "labelled.jsonl:2: need JSON with text and category",
        ),
        ('{"category": "electrical"}', "labelled.jsonl:2:"),
        ('{"text": "  ", "category": "electrical"}', "empty text"),
        ("not json", "labelled.jsonl:2:"),
    ],
)
def test_a_bad_labelled_file_is_refused_before_training_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, said: str
) -> None:
    path = tmp_path / "labelled.jsonl"
    path.write_text(
        '{"text": "Sicherung F4 ausgelöst", "category": "electrical"}\n' + line + "\n", encoding="utf-8"
    )
    code = factory_models(["train", "notes", "--out", str(tmp_path / "out"), "--extra", str(path)])
    assert code == 2
    assert said in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing was trained


def test_an_empty_labelled_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no labelled notes"):
        load_extra([_write(tmp_path / "empty.jsonl", [])])
