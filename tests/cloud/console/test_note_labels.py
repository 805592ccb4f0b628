"""The Notes page's category form: operators (not viewers) label a note's right category, the page
shows who labelled it, and the label is stored as a ``labelled`` disposition under the user's name."""

from __future__ import annotations

import re

from tests.support.console import ORIGIN, Console, login, seed_notes


def test_an_operator_labels_a_notes_category_and_everyone_sees_who(console: Console) -> None:
    seed_notes(console.ingest)
    client = console.client
    login(client, "vera")
    assert "note-label-form" not in client.get("/lines/line-1/notes").text  # viewers only read
    login(client, "otto")
    page = client.get("/lines/line-1/notes").text
    forms = re.findall(
        r'<form class="note-label-form" method="post" action="(/lines/line-1/notes/([^/]+)/category)"', page
    )
    assert forms
    air_leak = next(
        m
        for m in re.finditer(r'data-id="([^"]+)"[^>]*>(?:(?!</li>).)*?Air leak at valve block V2', page, re.S)
    )
    note_id = air_leak.group(1)
    answer = client.post(
        f"/lines/line-1/notes/{note_id}/category", data={"category": "mechanical"},
        headers={**ORIGIN, "Referer": "http://testserver/lines/line-1/notes?urgency=medium"},
        follow_redirects=False,
    )  # fmt: skip
    assert answer.status_code == 303
    assert answer.headers["location"] == "/lines/line-1/notes?urgency=medium"
    stored = client.get(f"/api/v1/results/{note_id}/disposition").json()
    assert (stored["disposition"], stored["true_label"], stored["actor"]) == (
        "labelled",
        "mechanical",
        "user:otto",
    )
    login(client, "vera")
    page = client.get("/lines/line-1/notes").text
    assert re.search(r'<p class="note-label">Labelled <strong>mechanical</strong> · otto <small', page)
    refused = client.post(f"/lines/line-1/notes/{note_id}/category", data={"category": "safety"},
                          headers=ORIGIN, follow_redirects=False)  # fmt: skip
    assert refused.status_code == 403
    login(client, "otto")
    wrong = client.post(f"/lines/line-1/notes/{note_id}/category", data={"category": "plumbing"},
                        headers=ORIGIN, follow_redirects=False)  # fmt: skip
    assert wrong.status_code == 422
    assert "needs true_label, one of" in wrong.text
