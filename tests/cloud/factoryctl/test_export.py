"""factoryctl export: a CSV streamed to a file (or stdout) with a progress line, and clear errors."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from cloud.factoryctl import cli as factoryctl
from cloud.factoryctl.export import RowCounter
from tests.support.messages import T0
from tests.support.plant import Plant

SINCE, UNTIL = T0.isoformat(), (T0 + timedelta(hours=1)).isoformat()


@pytest.fixture
def env(plant: Plant, tmp_path: Path) -> dict[str, str]:
    return {
        "FACTORYCTL_CONFIG": str(tmp_path / "cfg" / "config.json"),
        "FACTORY_API_URL": "http://testserver",
        "FACTORY_API_TOKEN": plant.tokens["viewer"],
    }


def ctl(client: httpx.Client, env: dict[str, str], *argv: str) -> int:
    return factoryctl.main(list(argv), environ=env, client=client)


def test_export_streams_the_range_to_a_file_with_a_progress_line(
    plant: Plant, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "exports" / "line-1.csv"
    out.parent.mkdir()
    code = ctl(plant.client, env, "export", "results", "--since", SINCE, "--until", UNTIL, "--line", "line-1",
               "--out", str(out))  # fmt: skip
    assert code == 0
    printed = capsys.readouterr()
    assert printed.out == ""
    assert printed.err.endswith(f"\rexported 10 results rows to {out}\n")
    assert "\rresults: 10 rows" in printed.err
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
    assert rows[0][:2] == ["id", "captured_at"]
    assert [r[8] for r in rows[1:]] == [f"frame-{s}" for s in range(1, 11)]  # oldest first
    assert sorted(p.name for p in out.parent.iterdir()) == ["line-1.csv"]  # no .part left behind
    # The same bytes as the API's answer.
    api = plant.client.get("/api/v1/export/results.csv", params={"since": SINCE, "until": UNTIL, "line": "line-1"},
                           headers=plant.headers("viewer"))  # fmt: skip
    assert out.read_bytes() == api.content


def test_export_to_stdout_counts_rows_whose_text_spans_lines(
    plant: Plant, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    defect = next(r["id"] for r in plant.results("line-1") if r["seq"] == 3)
    body = {"disposition": "false_reject", "note": 'glare,\n"not" a scratch\n'}
    assert plant.client.put(f"/api/v1/results/{defect}/disposition", json=body,
                            headers=plant.headers("operator")).status_code == 200  # fmt: skip
    # Naive times are UTC; the disposition was set just now, so the range runs to tomorrow.
    assert (
        ctl(plant.client, env, "export", "dispositions", "--since", "2020-01-01", "--until", "2100-01-01")
        == 0
    )
    printed = capsys.readouterr()
    rows = list(csv.reader(io.StringIO(printed.out, newline="")))
    assert len(rows) == 2
    assert rows[1][4] == body["note"].strip()
    assert printed.err.endswith("\rexported 1 dispositions rows to standard output\n")


def test_row_counter_sees_quoted_newlines_split_across_chunks() -> None:
    counter = RowCounter()
    for piece in ['a,b\r\n1,"x\r', '\ny ""q', '"" z"\r\n2,', "w\r\n"]:
        counter.feed(piece)
    assert (counter.records, counter.rows) == (3, 2)


def test_export_errors_say_what_was_wrong(
    plant: Plant, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.csv"
    assert ctl(plant.client, env, "export", "results", "--since", "yesterday", "--out", str(out)) == 2
    assert "--since: 'yesterday' is not an ISO 8601 date or time" in capsys.readouterr().err
    assert (
        ctl(plant.client, env, "export", "alerts", "--since", UNTIL, "--until", SINCE, "--out", str(out)) == 1
    )
    err = capsys.readouterr().err
    assert (
        "GET /api/v1/export/alerts.csv failed with HTTP 422: since (2026-01-05T09:00:00+00:00) must be before"
        in err
    )
    assert not out.exists()
    anonymous = {k: v for k, v in env.items() if k != "FACTORY_API_TOKEN"}
    plant.client.headers.pop("Authorization", None)
    assert ctl(plant.client, anonymous, "export", "notes", "--since", SINCE, "--out", str(out)) == 3
    assert "HTTP 401" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        factoryctl.build_parser().parse_args(["export", "pictures", "--since", SINCE])
    assert usage.value.code == 2
    assert "invalid choice: 'pictures'" in capsys.readouterr().err
    assert (
        ctl(plant.client, env, "export", "results", "--since", SINCE, "--out", str(tmp_path / "no" / "x.csv"))
        == 1
    )
    assert f"--out: cannot write {tmp_path / 'no' / 'x.csv'}" in capsys.readouterr().err


def test_an_interrupted_export_leaves_no_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    class CutOff(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield b"id,at\r\n1,2\r\n"
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

    transport = httpx.MockTransport(lambda request: httpx.Response(200, stream=CutOff()))
    out = tmp_path / "x.csv"
    env = {"FACTORYCTL_CONFIG": str(tmp_path / "config.json"), "FACTORY_API_URL": "http://testserver"}
    with httpx.Client(transport=transport, base_url="http://testserver") as client:
        assert ctl(client, env, "export", "results", "--since", SINCE, "--out", str(out)) == 1
    err = capsys.readouterr().err
    assert "export interrupted after 1 rows: peer closed connection" in err
    assert f"{out} was not written" in err
    assert list(tmp_path.iterdir()) == []  # neither the file nor its .part
