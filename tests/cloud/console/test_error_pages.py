"""A console address that names nothing gets the console's 404 page, in words."""

from __future__ import annotations

from tests.support.console import ORIGIN, Console, login


def test_unknown_console_addresses_get_the_console_404_page_in_words(console: Console) -> None:
    login(console.client, "otto")
    for path, said in [
        ("/models/defect-cnnx", "There is no model &#39;defect-cnnx&#39;: it does not exist or was deleted."),
        ("/models/defect-cnn/9.9", "There is no model &#39;defect-cnn&#39; version &#39;9.9&#39;"),
        ("/gateways/gw-nope", "There is no gateway &#39;gw-nope&#39;"),
    ]:
        answer = console.client.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("text/html"), path
        assert '{"detail"' not in answer.text
        assert "<h1>Not found</h1>" in answer.text, path
        assert said in answer.text, (path, answer.text)
    ack = console.client.post("/alerts/999/ack", headers=ORIGIN)
    assert ack.status_code == 404
    assert "There is no alert 999: it does not exist or was deleted." in ack.text
