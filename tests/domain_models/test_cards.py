"""Cards rendered from templates: a missing figure fails, and the prose follows the figures given.

The notes card is rendered from the bundled release's own .eval.json (no training), once as it
is and once as if every INT8 variant had been refused.
"""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from jinja2 import UndefinedError

import domain_models
from domain_models.cards import render
from domain_models.notes import card

ROOT = Path(__file__).resolve().parents[2]
NOTES = ROOT / "domain_models" / "notes" / "artifacts"


def test_a_missing_figure_fails_instead_of_printing_nothing() -> None:
    with pytest.raises(UndefinedError):
        render("notes_card.md.j2")


def test_every_template_is_package_data() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "templates/*.md.j2" in data["domain_models"]
    templates = list((Path(domain_models.__file__).parent / "templates").iterdir())
    assert templates
    assert all(p.name.endswith(".md.j2") for p in templates)


def _notes_card(tmp_path: Path, ev: dict[str, Any]) -> str:
    manifest = next(NOTES.glob("*.manifest.json"))
    card.write(tmp_path / "MODEL_CARD.md", manifest, ev)
    return (tmp_path / "MODEL_CARD.md").read_text()


def test_the_notes_card_states_what_its_figures_say(tmp_path: Path) -> None:
    ev = json.loads(next(NOTES.glob("*.eval.json")).read_text())
    text = _notes_card(tmp_path, ev)
    assert f"On {ev['generated_validation']['count']} generated notes" in text
    refused = [v["name"] for v in ev["variants"] if not v["passed"]]
    if refused:
        assert f"Refused by the gate on DEV: {', '.join(refused)}." in text
    assert "The variant that ships is" in text

    fallback = copy.deepcopy(ev)
    fallback["shipped"] = "fp32"
    for v in fallback["variants"]:
        v["passed"] = False
    text = _notes_card(tmp_path, fallback)
    names = ", ".join(v["name"] for v in fallback["variants"])
    assert f"Refused by the gate on DEV: {names}." in text
    assert "The variant that ships is" not in text
    assert "(variant `fp32`: FP32, no quantization;" in text
