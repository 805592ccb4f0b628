"""The Alerts page: the admins' rule forms with units and plain-word errors, the alert table, and
acknowledging."""

from __future__ import annotations

import re

from cloud.alerts.rules import evaluate_all
from cloud.db import make_engine, make_sessionmaker
from tests.support.console import ORIGIN, Console, login


def test_rule_form_names_kinds_and_units_and_questions_a_tiny_percent(console: Console) -> None:
    login(console.client, "ada")
    page = console.client.get("/alerts").text
    form = page[page.index('id="create-rule"') :]
    assert '<option value="gateway_offline" >Gateway offline (seconds)</option>' in form
    assert "Defect rate (%)" in form
    assert "Outbox backlog (items)" in form
    assert ">gateway_offline<" not in form
    assert "Defect rate in percent: 10 means 10%, not 0.1." in form
    assert "Window in seconds (defect rate only)" in form
    rule = {"line": "line-1", "kind": "defect_rate", "threshold": "0.1", "window_s": "600", "enabled": "on"}
    made = console.client.post("/alerts/rules", data=rule, headers=ORIGIN, follow_redirects=False)
    assert made.status_code == 303, made.text
    assert made.headers["location"].startswith("/alerts?saved=")
    after = console.client.get(made.headers["location"]).text
    notice = re.search(r'<p class="form-errors warn" id="rule-notice" role="status">(.*?)</p>', after, re.S)
    assert notice is not None, after
    assert "The threshold is a percent: 0.1 means 0.1% of results, not 10%" in notice.group(1)
    row = re.search(r'<tr data-rule="1">.*?</tr>', after, re.S)
    assert row is not None
    assert "<td>Defect rate</td><td>0.1%<br>" in row.group(0)
    assert "below 1%: a percent, not a fraction" in row.group(0)
    assert "600 s (10 min)" in row.group(0)
    assert "Threshold (%)" in row.group(0)
    # line-1 has 3 defects in 6 results (50%): far above 0.1%, so the alert opened at once.
    engine = make_engine(console.settings.db_url)
    try:
        evaluate_all(make_sessionmaker(engine))
    finally:
        engine.dispose()
    login(console.client, "otto")
    alerts = console.table("/alerts", "alerts")
    assert "<th>Opened <small>UTC</small></th>" in alerts
    assert '<td class="message">Defect rate: ' in alerts
    assert '<td class="action"><form method="post" action="/alerts/' in alerts
    login(console.client, "ada")
    # A threshold meant as a percent raises no question.
    fine = {**rule, "threshold": "10"}
    made = console.client.post("/alerts/rules", data=fine, headers=ORIGIN, follow_redirects=False)
    assert 'id="rule-notice"' not in console.client.get(made.headers["location"]).text
    offline = {"line": "line-2", "kind": "gateway_offline", "threshold": "60", "enabled": "on"}
    assert console.client.post("/alerts/rules", data=offline, headers=ORIGIN).status_code == 200
    listed = console.client.get("/alerts").text
    assert "<td>Gateway offline</td><td>60 seconds</td><td>-</td>" in listed


def test_rule_on_a_line_without_gateways_is_kept_but_flagged(console: Console) -> None:
    login(console.client, "ada")
    rule = {"line": "line-9", "kind": "gateway_offline", "threshold": "60", "enabled": "on"}
    made = console.client.post("/alerts/rules", data=rule, headers=ORIGIN, follow_redirects=False)
    assert made.status_code == 303, made.text
    ok = {**rule, "line": "line-1"}
    assert (
        console.client.post("/alerts/rules", data=ok, headers=ORIGIN, follow_redirects=False).status_code
        == 303
    )
    page = console.client.get("/alerts").text
    rows = dict(re.findall(r'<tr data-rule="\d+"><td>([\w-]+)(.*?)</tr>', page, re.S))
    assert set(rows) == {"line-1", "line-9"}
    assert "no gateway on this line" in rows["line-9"]
    assert "no gateway on this line" not in rows["line-1"]
    datalist = re.search(r'<datalist id="known-lines">(.*?)</datalist>', page, re.S)
    assert datalist is not None
    assert re.findall(r'<option value="([^"]+)">', datalist.group(1)) == ["line-1", "line-2"]


def test_acknowledging_an_unknown_alert_shows_the_api_answer(console: Console) -> None:
    client = console.client
    login(client, "vera")
    assert client.post("/alerts/999/ack", headers=ORIGIN).status_code == 403
    login(client, "otto")
    answer = client.post("/alerts/999/ack", headers=ORIGIN)
    assert answer.status_code == 404
    assert "The API answered 404" in answer.text


def test_admin_creates_edits_and_deletes_a_rule_and_api_errors_sit_beside_the_form(
    console: Console,
) -> None:
    client = console.client
    login(client, "ada")
    assert 'id="create-rule"' in client.get("/alerts").text
    bad = {"line": "line-1", "kind": "defect_rate", "threshold": "150", "window_s": "600", "enabled": "on"}
    refused = client.post("/alerts/rules", data=bad, headers=ORIGIN)
    assert refused.status_code == 422
    assert "a defect rate is a percent (0-100), got 150" in refused.text
    assert 'name="threshold" value="150"' in refused.text  # the typed values are kept
    assert 'name="window_s" placeholder="e.g. 600" value="600"' in refused.text
    good = {**bad, "threshold": "5"}
    created = client.post("/alerts/rules", data=good, headers=ORIGIN, follow_redirects=False)
    assert created.status_code == 303, created.text
    page = client.get("/alerts").text
    assert 'data-rule="1"><td>line-1</td><td>Defect rate</td><td>5%</td><td>600 s (10 min)</td>' in page
    no_window = client.post("/alerts/rules/1", data={"kind": "defect_rate", "threshold": "7"}, headers=ORIGIN)
    assert no_window.status_code == 422
    assert "Window: a defect_rate rule needs a window in seconds" in no_window.text
    edit = {"kind": "defect_rate", "threshold": "7", "window_s": "300"}  # no 'enabled': unchecked
    assert (
        client.post("/alerts/rules/1", data=edit, headers=ORIGIN, follow_redirects=False).status_code == 303
    )
    page = client.get("/alerts").text
    row = r'data-rule="1"><td>line-1</td><td>Defect rate</td><td>7%</td><td>300 s \(5 min\)</td>\s*<td><span class="badge bad">disabled'
    assert re.search(row, page), page[page.find("data-rule") :][:400]
    gone = client.post("/alerts/rules/1/delete", headers=ORIGIN, follow_redirects=False)
    assert gone.status_code == 303
    assert 'data-rule="1"' not in client.get("/alerts").text


def test_roles_below_admin_see_no_rule_form_and_are_refused_403(console: Console) -> None:
    client = console.client
    form = {"line": "line-1", "kind": "outbox_backlog", "threshold": "10", "enabled": "on"}
    for user in ("vera", "otto"):
        login(client, user)
        page = client.get("/alerts").text
        assert 'id="create-rule"' not in page
        assert 'action="/alerts/rules/' not in page
        refused = client.post("/alerts/rules", data=form, headers=ORIGIN)
        assert refused.status_code == 403, user
        assert "needs the admin role" in refused.text
        for path in ("/alerts/rules/1", "/alerts/rules/1/delete"):  # edit and delete: the API decides
            assert client.post(path, data=form, headers=ORIGIN).status_code == 403, (user, path)
    login(client, "ada")
    forged = client.post("/alerts/rules", data=form, headers={"Origin": "http://evil.example"})
    assert forged.status_code == 403
    assert "console form refused" in forged.text
    assert 'id="rule-list"' not in client.get("/alerts").text  # nothing was stored


def test_rule_form_errors_are_plain_words_naming_the_field(console: Console) -> None:
    login(console.client, "ada")
    bad = {"line": "", "kind": "defect_rate", "threshold": "abc", "window_s": "0", "min_results": "x"}
    refused = console.client.post("/alerts/rules", data=bad, headers=ORIGIN)
    assert refused.status_code == 422
    page = refused.text
    assert re.search(r'id="error-line" role="alert">Line is required<', page), page
    assert re.search(r'id="error-threshold" role="alert">Threshold must be a number<', page)
    assert re.search(r'id="error-window_s" role="alert">Window must be more than 0<', page)
    assert re.search(r'id="error-min_results" role="alert">Min. results must be a whole number<', page)
    assert "String should" not in page
    assert "Input should" not in page


def test_alert_table_labels_opening_and_current_value_with_unit(console: Console) -> None:
    login(console.client, "ada")
    rule = {"line": "line-1", "kind": "defect_rate", "threshold": "10", "window_s": "3600", "enabled": "on"}
    made = console.client.post("/alerts/rules", data=rule, headers=ORIGIN, follow_redirects=False)
    assert made.status_code == 303, made.text
    engine = make_engine(console.db_url)
    try:
        evaluate_all(make_sessionmaker(engine))
    finally:
        engine.dispose()
    page = console.client.get("/alerts").text
    assert "<th>Alert (as opened)</th>" in page
    assert ">Value now</th>" in page
    assert '<td class="nowrap value-now">50.0%</td>' in page  # 3 defects of 6: in percent, with its unit


def test_rule_form_help_follows_the_kind_and_numbers_get_a_keypad(console: Console) -> None:
    login(console.client, "ada")
    page = console.client.get("/alerts").text
    form = page[page.index('id="create-rule"') :]
    hints = dict(
        re.findall(r'<span class="kind-hint" data-kind="([a-z_]+)" data-unit="[^"]*">([^<]+)</span>', form)
    )
    assert hints == {
        "defect_rate": "Defect rate in percent: 10 means 10%, not 0.1.",
        "gateway_offline": "Gateway offline in seconds: 300 means 5 minutes of silence.",
        "outbox_backlog": "Outbox backlog in items (results and events) waiting to be sent.",
        "model_drift": "Model drift level: 2 alerts on confirmed drift (empty means 2), 1 on suspected.",
    }
    assert "items (results and events) waiting in a gateway&#39;s outbox" in form
    assert "items (results)" not in form
    assert '<select name="kind" id="rule-kind">' in form
    assert '<span id="threshold-unit">' in form
    for field, mode in (("threshold", "decimal"), ("window_s", "decimal"), ("min_results", "numeric")):
        assert re.search(rf'<input name="{field}"[^>]* inputmode="{mode}"', form), field
    script = console.client.get("/console/static/console.js")
    assert script.status_code == 200
    assert 'getElementById("rule-kind")' in script.text
    css = console.client.get("/console/static/console.css").text
    assert ".kind-hint[hidden] { display: none; }" in css
