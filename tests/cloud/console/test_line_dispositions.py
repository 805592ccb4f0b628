"""The Line page's dispositions: the buttons operators (not viewers) get on each flagged picture, the
form answered with the tile's block (script) or the page again (plain post), refusals, the
false-reject rate beside the defect rate, and the live stream redrawing a judged tile."""

from __future__ import annotations

import re
from typing import Any

from tests.support.console import ORIGIN, Console, login
from tests.support.console_live import Live, read_event
from tests.support.testclient import TestClient

FRAGMENT = {**ORIGIN, "X-Console-Fragment": "disposition"}


def tile(page: str, result_id: str) -> str:
    found = re.search(rf'<figure data-id="{result_id}">.*?</figure>', page, re.S)
    assert found is not None, f"no gallery tile of {result_id}"
    return found.group(0)


def judge(client: TestClient, result_id: str, headers: dict[str, str], **form: str) -> Any:
    return client.post(
        f"/lines/line-1/dispositions/{result_id}", data=form, headers=headers, follow_redirects=False
    )


def test_operators_get_three_buttons_per_flagged_picture_viewers_none(console: Console) -> None:
    client, picture = console.client, console.seeded.thumbnail_result
    login(client, "otto")
    page = client.get("/lines/line-1").text
    assert len(re.findall(r'<form class="dispo-form"', page)) == 3  # the three flagged results
    mine = tile(page, picture)
    assert f'action="/lines/line-1/dispositions/{picture}"' in mine
    assert re.findall(r'name="disposition" value="(\w+)"', mine) == [
        "confirmed_defect",
        "false_reject",
        "needs_review",
    ]
    assert "not reviewed" in mine
    login(client, "vera")
    page = client.get("/lines/line-1").text
    assert "dispo-form" not in page
    assert "not reviewed" in tile(page, picture)


def test_a_disposition_posted_by_script_comes_back_as_the_tiles_block(console: Console) -> None:
    client, picture = console.client, console.seeded.thumbnail_result
    login(client, "otto")
    answer = judge(client, picture, FRAGMENT, disposition="false_reject", note="glare on the rim")
    assert answer.status_code == 200, answer.text
    block = answer.text
    assert block.startswith(f'<div class="dispo" data-disposition-of="{picture}">')
    assert re.search(r'<p class="dispo-now dispo-false_reject">False reject · otto <small', block)
    assert "glare on the rim" in block
    assert re.search(r'value="false_reject" class="dispo-false_reject" aria-pressed="true"', block)
    stored = client.get(f"/api/v1/results/{picture}/disposition").json()
    assert (stored["disposition"], stored["actor"], stored["note"]) == (
        "false_reject",
        "user:otto",
        "glare on the rim",
    )
    # The page as anyone reads it shows it, with the rate it makes beside the defect rate.
    login(client, "vera")
    page = client.get("/lines/line-1").text
    assert "False reject · otto" in tile(page, picture)
    assert "6 results · 3 defects · defect rate 50.0% · " in page
    assert "false-reject rate 100.0% of 1 reviewed" in page


def test_a_plain_form_post_goes_back_to_the_page_it_came_from(console: Console) -> None:
    client, picture = console.client, console.seeded.thumbnail_result
    login(client, "ada")
    referer = {**ORIGIN, "Referer": "http://testserver/lines/line-1?range=6h"}
    answer = judge(client, picture, referer, disposition="confirmed_defect")
    assert (answer.status_code, answer.headers["location"]) == (303, "/lines/line-1?range=6h")
    elsewhere = {**ORIGIN, "Referer": "http://testserver/alerts"}
    answer = judge(client, picture, elsewhere, disposition="needs_review")
    assert answer.headers["location"] == "/lines/line-1"
    page = client.get("/lines/line-1?range=6h").text
    assert "Needs review · ada" in tile(page, picture)
    assert "false-reject rate -: none reviewed · 1 needs review" in page


def test_refusals_say_why_in_the_tile_or_as_the_error_page(console: Console) -> None:
    client, picture = console.client, console.seeded.thumbnail_result
    login(client, "vera")
    refused = judge(client, picture, FRAGMENT, disposition="false_reject")
    assert refused.status_code == 403
    assert refused.text.startswith("Your role may not do this: this needs the operator role")
    page = judge(client, picture, ORIGIN, disposition="false_reject")
    assert page.status_code == 403
    assert "Your role may not do this" in page.text
    login(client, "otto")
    wrong = judge(client, picture, FRAGMENT, disposition="maybe")
    assert wrong.status_code == 422
    assert wrong.text == (
        "The request failed: disposition: Input should be 'confirmed_defect', 'false_reject', 'needs_review' "
        "or 'labelled'"
    )
    good = next(
        r["id"] for r in client.get("/api/v1/results?line=line-1").json()["items"] if not r["is_defect"]
    )
    unflagged = judge(client, good, FRAGMENT, disposition="confirmed_defect")
    assert unflagged.status_code == 422
    assert "was not flagged by its model (is_defect false)" in unflagged.text
    assert (
        judge(client, picture, {"X-Console-Fragment": "disposition"}, disposition="needs_review").status_code
        == 403
    )
    client.cookies.clear()
    assert judge(client, picture, FRAGMENT, disposition="needs_review").status_code == 401
    assert judge(client, picture, ORIGIN, disposition="needs_review").headers["location"] == "/login"
    assert client.get(f"/api/v1/results/{picture}/disposition").status_code == 404  # nothing was stored


def test_the_stream_redraws_a_tile_when_its_disposition_changes(live: Live) -> None:
    client, picture = live.client, live.seeded.thumbnail_result
    login(client, "otto")
    with client.stream("GET", "/console/lines/line-1/events?range=7d&limit=50") as stream:
        lines = stream.iter_lines()
        _, first = read_event(lines)
        assert len(first["gallery"]) == 3
        assert first["redrawn"] == []
        # Someone else (an admin, through the API) judges the picture while the page is open.
        body = {"disposition": "confirmed_defect", "note": "crack confirmed"}
        answer = client.put(f"/api/v1/results/{picture}/disposition", json=body, headers=live.token("ada"))
        assert answer.status_code == 200, answer.text
        _, second = read_event(lines)
    assert second["gallery"] == []  # nothing new: the judged tile is sent again, to be replaced
    assert [t["id"] for t in second["redrawn"]] == [picture]
    redrawn = second["redrawn"][0]["html"]
    assert "Confirmed defect · ada" in redrawn
    assert "crack confirmed" in redrawn
    assert 'class="dispo-form"' in redrawn  # drawn for this stream's operator, buttons and all
    assert "false-reject rate 0.0% of 1 reviewed" in second["parts"]["totals"]
