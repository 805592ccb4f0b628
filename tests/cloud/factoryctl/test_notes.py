"""factoryctl notes export --labelled: the notes operators labelled, written as training JSONL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloud.factoryctl import cli as factoryctl
from tests.support.plant import Plant, feed, note


def test_labelled_notes_are_written_as_jsonl_with_a_summary(
    plant: Plant, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feed(plant, "gw-n", "line-4", [note(1, "HPU on press 2 weeping at the manifold", line="line-4")])
    (result,) = plant.results("line-4")
    labelled = {"disposition": "labelled", "true_label": "hydraulic_pneumatic"}
    answer = plant.client.put(
        f"/api/v1/results/{result['id']}/disposition", json=labelled, headers=plant.headers("operator")
    )
    assert answer.status_code == 200, answer.text
    env = {
        "FACTORYCTL_CONFIG": str(tmp_path / "cfg" / "config.json"),
        "FACTORY_API_URL": "http://testserver",
        "FACTORY_API_TOKEN": plant.tokens["viewer"],
    }
    out = tmp_path / "labelled.jsonl"
    code = factoryctl.main(["notes", "export", "--labelled", str(out), "--line", "line-4"], environ=env,
                           client=plant.client)  # fmt: skip
    assert code == 0
    assert capsys.readouterr().err == f"exported 1 labelled notes to {out} (1 hydraulic_pneumatic)\n"
    (row,) = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert (row["text"], row["category"]) == ("HPU on press 2 weeping at the manifold", "hydraulic_pneumatic")
    assert not list(tmp_path.glob("*.part"))
    # A bad time is a usage error before anything is asked or written.
    bad = factoryctl.main(["notes", "export", "--labelled", str(tmp_path / "x.jsonl"), "--since", "soon"],
                          environ=env, client=plant.client)  # fmt: skip
    assert bad == 2
    assert not (tmp_path / "x.jsonl").exists()
