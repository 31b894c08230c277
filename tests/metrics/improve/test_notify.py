"""metrics.improve.notify and ``alerts --notify``: payloads, a local webhook (retries, refusals, redirects) and a local
SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
import socket
import threading
from email import message_from_bytes
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import messages_frame
from metrics.improve import notify
from metrics.errors import ConfigError

REPORT = {"week": "2026-W33", "breached": [
    {"rule": "escalation_rate > 0.3", "name": "Handoffs <b>&</b>", "metric": "escalation_rate", "op": ">",
     "threshold": 0.3, "value": 0.6, "n": 10, "week": "2026-W33", "detail": None,
     "sentence": "Handoffs <b>&</b>: 60.0% in 2026-W33 (> 30.0%, breached)"}],
    "not_evaluated": [{"rule": "intent_accuracy < 0.8", "reason": "no intent column"}], "evaluated_count": 2}


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


def _retry():
    sleeps = Sleeps()
    return notify.Retry(sleep=sleeps), sleeps


# --------------------------------------------------------------------------- payloads

def test_generic_payload_carries_the_breached_rules():
    p = notify.build_payload(REPORT, style="generic", dataset="Support bot")
    assert p["source"] == "chatlens" and p["dataset"] == "Support bot" and p["week"] == "2026-W33"
    assert p["breached_count"] == 1 and p["breached"][0]["rule"] == "escalation_rate > 0.3"
    assert p["breached"][0]["value"] == 0.6 and p["evaluated_count"] == 2
    assert p["not_evaluated"] == [{"rule": "intent_accuracy < 0.8", "reason": "no intent column"}]
    assert p["text"] == "Chatlens: 1 alert rule breached in 2026-W33 (Support bot)"


def test_slack_payload_blocks_and_escaping():
    p = notify.build_payload(REPORT, style="slack", dataset="Bot <x>")
    assert p["text"] == "Chatlens: 1 alert rule breached in 2026-W33 (Bot &lt;x&gt;)"
    types = [b["type"] for b in p["blocks"]]
    assert types == ["header", "section", "section", "context"]
    assert p["blocks"][1]["text"]["text"] == "*Dataset:* Bot &lt;x&gt;\n*Week:* 2026-W33"
    # mrkdwn escaping: & < > from the data become entities, so no <link|text> or @channel can be injected
    assert p["blocks"][2]["text"]["text"] == \
        "• Handoffs &lt;b&gt;&amp;&lt;/b&gt;: 60.0% in 2026-W33 (&gt; 30.0%, breached)"
    assert p["blocks"][3]["elements"][0]["text"] == "2 rule(s) evaluated, 1 not evaluated"


def test_teams_payload_is_an_adaptive_card():
    p = notify.build_payload(REPORT, style="teams", dataset="Support bot")
    assert p["type"] == "message"
    att = p["attachments"][0]
    assert att["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = att["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["body"][0]["text"] == "Chatlens: 1 alert rule breached in 2026-W33 (Support bot)"
    assert {"title": "Dataset", "value": "Support bot"} in card["body"][1]["facts"]
    assert card["body"][2]["text"] == REPORT["breached"][0]["sentence"]


def test_detect_style_and_targets():
    assert notify.detect_style("https://hooks.slack.com/services/T/B/X") == "slack"
    assert notify.detect_style("https://acme.webhook.office.com/webhookb2/x") == "teams"
    assert notify.detect_style("https://prod-1.westeurope.logic.azure.com/workflows/x") == "teams"
    assert notify.detect_style("http://127.0.0.1:9/hook") == "generic"
    for bad in ("ftp://example.org/x", "file:///etc/passwd", "javascript:alert(1)", "hooks.slack.com/x"):
        with pytest.raises(ConfigError):
            notify.notify(bad, REPORT)
    with pytest.raises(ConfigError, match="line break"):
        notify.parse_mailto("mailto:a@example.org?subject=x%0D%0ABcc:%20evil@example.org")


# --------------------------------------------------------------------------- a local webhook

class _Hook:
    """A webhook on 127.0.0.1 answering the scripted statuses in turn (then 200); records each request."""

    def __init__(self):
        self.statuses: list[int] = []
        self.requests: list[dict] = []
        self.location = ""
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status = hook.statuses.pop(0) if hook.statuses else 200
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", hook.location)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/secret-token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def hook():
    h = _Hook()
    yield h
    h.close()


@pytest.fixture
def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there any more: connections are refused
    return port


def test_webhook_receives_the_json_payload(hook):
    retry, sleeps = _retry()
    done = notify.notify(hook.url, REPORT, style="generic", dataset="Support bot", retry=retry)
    assert (done.attempts, done.status, sleeps) == (1, "HTTP 200", [])
    assert done.target == f"http://127.0.0.1:{hook.server.server_address[1]}/…"  # the token is not shown
    req = hook.requests[0]
    assert req["path"] == "/hooks/secret-token"
    assert req["headers"]["Content-Type"] == "application/json; charset=utf-8"
    body = json.loads(req["body"])
    assert body["breached"][0]["name"] == "Handoffs <b>&</b>" and body["dataset"] == "Support bot"


def test_webhook_retries_a_500_then_succeeds(hook):
    hook.statuses = [500]
    retry, sleeps = _retry()
    done = notify.post_webhook(hook.url, {"x": 1}, retry=retry)
    assert done.attempts == 2 and sleeps == [0.5]
    assert len(hook.requests) == 2 and all(json.loads(r["body"]) == {"x": 1} for r in hook.requests)


def test_webhook_gives_up_after_three_5xx_with_backoff(hook):
    hook.statuses = [503, 502, 500]
    retry, sleeps = _retry()
    with pytest.raises(notify.DeliveryError, match="after 3 attempts: HTTP 500") as err:
        notify.post_webhook(hook.url, {"x": 1}, retry=retry)
    assert sleeps == [0.5, 1.0] and len(hook.requests) == 3
    assert "secret-token" not in str(err.value)


def test_webhook_4xx_is_not_retried(hook):
    hook.statuses = [400]
    retry, sleeps = _retry()
    with pytest.raises(notify.DeliveryError, match="after 1 attempt: HTTP 400"):
        notify.post_webhook(hook.url, {"x": 1}, retry=retry)
    assert sleeps == [] and len(hook.requests) == 1


def test_webhook_redirect_to_another_host_is_not_followed(hook):
    hook.statuses = [302]
    hook.location = "http://example.org/collect"
    retry, sleeps = _retry()
    with pytest.raises(notify.DeliveryError, match=r"another host \(example.org\)"):
        notify.post_webhook(hook.url, {"x": 1}, retry=retry)
    assert len(hook.requests) == 1 and sleeps == []


def test_webhook_refused_connection_is_an_error(closed_port):
    retry, sleeps = _retry()
    with pytest.raises(notify.DeliveryError, match="after 3 attempts") as err:
        notify.post_webhook(f"http://127.0.0.1:{closed_port}/hook", {"x": 1}, retry=retry, timeout=2)
    assert sleeps == [0.5, 1.0]
    assert "refused" in str(err.value).lower()


# --------------------------------------------------------------------------- alerts --notify (CLI)

def _alerting_export(path):
    """Two complete ISO weeks (2026-W32, W33); in W33 6 of 10 conversations reach an agent (60% > 30%)."""
    rows = []
    for week, (day0, escalated) in enumerate((("2026-08-03", 2), ("2026-08-10", 6))):
        for i in range(10):
            cid = f"w{week}c{i}"
            day = day0 if i < 5 else ("2026-08-09" if week == 0 else "2026-08-16")
            rows.append({"conversation_id": cid, "speaker": "user", "text": "help", "timestamp": f"{day} 10:00"})
            rows.append({"conversation_id": cid, "speaker": "agent" if i < escalated else "bot", "text": "ok",
                         "timestamp": f"{day} 10:01"})
    messages_frame(rows).drop(columns=["row"]).to_csv(path, index=False)
    return path


def _cli(argv):
    from metrics import cli

    return cli.main(argv)


@pytest.fixture
def fast_retry(monkeypatch):
    sleeps = Sleeps()
    monkeypatch.setattr(notify, "DEFAULT_RETRY", notify.Retry(sleep=sleeps))
    return sleeps


def test_cli_alerts_notify_posts_breached_rules(tmp_path, hook, capsys, fast_retry):
    export = _alerting_export(tmp_path / "bot.csv")
    code = _cli(["alerts", str(export), "--rules", _rules(tmp_path, "escalation_rate > 30%"), "--notify", hook.url,
                 "--notify-style", "slack"])
    captured = capsys.readouterr()
    assert code == 1  # breached, delivered
    assert json.loads(captured.out)["breached"][0]["rule"] == "escalation_rate > 0.3"
    body = json.loads(hook.requests[0]["body"])
    assert body["text"] == "Chatlens: 1 alert rule breached in 2026-W33 (bot.csv)"
    assert body["blocks"][2]["text"]["text"] == "• Escalation rate: 60.0% in 2026-W33 (&gt; 30.0%, breached)"
    assert "notified http://127.0.0.1:" in captured.err


def test_cli_alerts_refused_webhook_exits_3(tmp_path, closed_port, capsys, fast_retry):
    export = _alerting_export(tmp_path / "bot.csv")
    code = _cli(["alerts", str(export), "--notify", f"http://127.0.0.1:{closed_port}/hook"])
    captured = capsys.readouterr()
    assert code == 3
    assert json.loads(captured.out)["breached"]  # the report is still printed
    assert "error: the notification to http://127.0.0.1:" in captured.err and "after 3 attempts" in captured.err
    assert fast_retry == [0.5, 1.0]


def test_cli_alerts_bad_target_exits_2_before_work(tmp_path, capsys):
    export = _alerting_export(tmp_path / "bot.csv")
    assert _cli(["alerts", str(export), "--notify", "ftp://example.org/x"]) == 2
    assert "http:// or https://" in capsys.readouterr().err


def test_cli_alerts_on_a_stored_dataset_with_saved_rules(tmp_path, hook, capsys, fast_retry):
    from metrics import store
    from metrics.improve import store as goals_store
    from metrics.improve.alerts import parse_rule

    export = _alerting_export(tmp_path / "bot.csv")
    db_path = tmp_path / "store.db"
    assert _cli(["ingest", str(export), "--db", str(db_path), "--dataset", "support bot"]) == 0
    db = store.connect(db_path)
    goals_store.save_alert_rules(db, [parse_rule("escalation_rate > 50%", name="Too many handoffs")])
    db.close()
    capsys.readouterr()
    code = _cli(["alerts", "--db", str(db_path), "--dataset", "support bot", "--notify", hook.url])
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [b["name"] for b in out["breached"]] == ["Too many handoffs"]  # the store's rule, not the defaults
    body = json.loads(hook.requests[0]["body"])
    assert body["dataset"] == "support bot" and body["breached"][0]["value"] == 0.6
    # nothing breached: no notification unless --notify-always
    assert _cli(["alerts", str(export), "--rules", _rules(tmp_path, "escalation_rate > 90%"), "--notify",
                 hook.url]) == 0
    assert len(hook.requests) == 1
    assert _cli(["alerts", str(export), "--rules", _rules(tmp_path, "escalation_rate > 90%"), "--notify",
                 hook.url, "--notify-always"]) == 0
    assert json.loads(hook.requests[1]["body"])["breached_count"] == 0


def _rules(tmp_path, rule: str) -> str:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"rules": [rule]}), encoding="utf-8")
    return str(path)


# --------------------------------------------------------------------------- e-mail through a local SMTP server

class _Inbox:
    def __init__(self):
        self.envelopes = []
        self.replies: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        if self.replies:
            return self.replies.pop(0)
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server(monkeypatch):
    aiosmtpd = pytest.importorskip("aiosmtpd.controller", reason="aiosmtpd is in the test extra")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    inbox = _Inbox()
    controller = aiosmtpd.Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    for key in ("CONFIG", "USER", "PASSWORD", "SSL"):
        monkeypatch.delenv(f"CHATLENS_SMTP_{key}", raising=False)
    monkeypatch.setenv("CHATLENS_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CHATLENS_SMTP_PORT", str(port))
    monkeypatch.setenv("CHATLENS_SMTP_FROM", "chatlens@example.org")
    monkeypatch.setenv("CHATLENS_SMTP_STARTTLS", "false")
    yield inbox
    controller.stop()


def test_email_is_sent_through_smtp(smtp_server):
    retry, sleeps = _retry()
    done = notify.notify("mailto:ops@example.org,lead@example.org", REPORT, dataset="Support bot", retry=retry)
    assert done.status == "sent" and done.attempts == 1
    env = smtp_server.envelopes[0]
    assert env.mail_from == "chatlens@example.org"
    assert env.rcpt_tos == ["ops@example.org", "lead@example.org"]
    msg = message_from_bytes(env.content, policy=default_policy)
    assert msg["Subject"] == "Chatlens: 1 alert rule breached in 2026-W33 (Support bot)"
    text = msg.get_body(preferencelist=("plain",)).get_content()
    assert "- Handoffs <b>&</b>: 60.0% in 2026-W33 (> 30.0%, breached)" in text
    assert "- intent_accuracy < 0.8: no intent column" in text
    attached = [p for p in msg.iter_attachments() if p.get_filename() == "alerts.json"]
    assert json.loads(attached[0].get_content())["breached"][0]["rule"] == "escalation_rate > 0.3"


def test_email_retries_a_transient_reply_and_fails_on_a_permanent_one(smtp_server):
    smtp_server.replies = ["451 4.3.0 try again later"]
    retry, sleeps = _retry()
    done = notify.notify("mailto:ops@example.org?subject=Bot%20alerts", REPORT, retry=retry)
    assert done.attempts == 2 and sleeps == [0.5]
    msg = message_from_bytes(smtp_server.envelopes[0].content, policy=default_policy)
    assert msg["Subject"] == "Bot alerts"
    smtp_server.replies = ["554 5.7.1 rejected"]
    retry, sleeps = _retry()
    with pytest.raises(notify.DeliveryError, match="after 1 attempt: SMTP 554"):
        notify.notify("mailto:ops@example.org", REPORT, retry=retry)
    assert sleeps == []


def test_cli_alerts_mailto(tmp_path, smtp_server, capsys, fast_retry):
    export = _alerting_export(tmp_path / "bot.csv")
    assert _cli(["alerts", str(export), "--rules", _rules(tmp_path, "escalation_rate > 30%"),
                 "--notify", "mailto:ops@example.org"]) == 1
    msg = message_from_bytes(smtp_server.envelopes[0].content, policy=default_policy)
    assert "Escalation rate: 60.0% in 2026-W33" in msg.get_body(preferencelist=("plain",)).get_content()


def test_cli_alerts_mail_server_down_exits_3(tmp_path, closed_port, capsys, monkeypatch, fast_retry):
    for key in ("CONFIG", "USER", "PASSWORD", "SSL"):
        monkeypatch.delenv(f"CHATLENS_SMTP_{key}", raising=False)
    monkeypatch.setenv("CHATLENS_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CHATLENS_SMTP_PORT", str(closed_port))
    monkeypatch.setenv("CHATLENS_SMTP_FROM", "chatlens@example.org")
    monkeypatch.setenv("CHATLENS_SMTP_STARTTLS", "false")
    export = _alerting_export(tmp_path / "bot.csv")
    assert _cli(["alerts", str(export), "--notify", "mailto:ops@example.org"]) == 3
    assert "was not delivered after 3 attempts" in capsys.readouterr().err


def test_smtp_settings_from_file_env_wins_and_no_cleartext_password(tmp_path):
    cfg = tmp_path / "smtp.toml"
    cfg.write_text('[smtp]\nhost = "mail.example.org"\nport = 465\nuser = "bot@example.org"\n'
                   'password = "s3cret"\nssl = true\nstarttls = false\n', encoding="utf-8")
    s = notify.SmtpSettings.load(env={"CHATLENS_SMTP_CONFIG": str(cfg), "CHATLENS_SMTP_PORT": "2465"})
    assert (s.host, s.port, s.ssl, s.starttls, s.sender) == ("mail.example.org", 2465, True, False, "bot@example.org")
    assert "s3cret" not in repr(s)
    with pytest.raises(ConfigError, match="without TLS"):
        notify.SmtpSettings.load(env={"CHATLENS_SMTP_HOST": "mail.example.org", "CHATLENS_SMTP_USER": "u@example.org",
                                      "CHATLENS_SMTP_PASSWORD": "x", "CHATLENS_SMTP_STARTTLS": "false"})
    with pytest.raises(ConfigError, match="CHATLENS_SMTP_HOST"):
        notify.SmtpSettings.load(env={})
