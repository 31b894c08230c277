"""Notifications: deliver the breached alert rules to a webhook (generic JSON, Slack, Teams) or by e-mail.

Targets (:func:`notify`)
    ``http://`` or ``https://`` URLs receive a JSON ``POST``; ``mailto:a@b.c[,d@e.f][?subject=...]``
    sends an e-mail through SMTP. Any other scheme is refused (ConfigError).
Payloads (:func:`build_payload`), from :func:`metrics.improve.alerts.alerts_report`
    * ``generic``: ``{"source": "chatlens", "event": "alerts", "dataset", "week", "breached_count",
      "breached": [...], "not_evaluated": [...], "evaluated_count", "text"}`` (the alert report's
      fields plus a one-line ``text``);
    * ``slack`` (incoming webhook): ``{"text": summary, "blocks": [header, section, section, context]}``;
      text from the data is escaped for Slack's mrkdwn (``&``, ``<``, ``>``);
    * ``teams`` (a Teams Workflows / Power Automate webhook): ``{"type": "message", "attachments":
      [an Adaptive Card 1.4]}``.
    ``auto`` picks ``slack`` for ``hooks.slack.com``, ``teams`` for ``*.webhook.office.com``,
    ``*.logic.azure.com`` and ``*.powerplatform.com`` hosts, else ``generic``.
Webhook delivery (:func:`post_webhook`)
    A ``POST`` with ``Content-Type: application/json``, a timeout per attempt (default 10 s) and
    no redirect followed (a webhook that redirects would receive a ``GET`` without the payload:
    that is reported as a failure, naming the other host when it is one). 2xx is success.
    Connection errors, timeouts, 408, 429 and 5xx are retried; other answers fail at once.
E-mail (:func:`send_email`, :class:`SmtpSettings`)
    SMTP settings from a TOML file (``[smtp]`` table: ``host``, ``port``, ``user``, ``password``,
    ``from``, ``starttls``, ``ssl``, ``timeout``; the file is ``--smtp-config`` or
    ``CHATLENS_SMTP_CONFIG``), overridden by the environment: ``CHATLENS_SMTP_HOST``, ``_PORT``
    (default 587), ``_USER``, ``_PASSWORD``, ``_FROM`` (default the user), ``_STARTTLS`` (default
    true), ``_SSL`` (implicit TLS, default false). A password is never sent over a connection
    without TLS except to a loopback host. Transient SMTP failures (connection errors, 4xx
    replies) are retried; permanent ones (5xx, refused recipients, authentication) are not.
Retries (:class:`Retry`)
    ``attempts`` (default 3) with exponential backoff: ``base_delay * factor**i`` seconds after
    failed attempt ``i`` (0.5 s, then 1 s). ``sleep`` is injectable for tests. A delivery that
    still fails raises :class:`DeliveryError` (the CLI exits with status 3); nothing is dropped
    silently. Error messages show a URL's scheme and host only, since webhook URLs carry secrets.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import smtplib
import ssl
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Callable, Mapping, Sequence

from metrics.errors import ChatlensError, ConfigError

__all__ = [
    "STYLES",
    "DeliveryError",
    "Retry",
    "DEFAULT_RETRY",
    "SmtpSettings",
    "Delivery",
    "detect_style",
    "summary_line",
    "build_payload",
    "post_webhook",
    "send_email",
    "parse_mailto",
    "notify",
    "redact_url",
]

STYLES = ("auto", "generic", "slack", "teams")
USER_AGENT = "chatlens-notify/1"
MAX_RESPONSE_BYTES = 64 * 1024
_SLACK_SECTION_LIMIT = 2900  # Slack's limit is 3,000 characters per section text
_RETRY_STATUSES = {408, 429}


class DeliveryError(ChatlensError):
    """A notification could not be delivered (after the retries)."""


@dataclass(frozen=True)
class Retry:
    """``attempts`` tries with ``base_delay * factor**i`` seconds of sleep after failed try ``i``."""

    attempts: int = 3
    base_delay: float = 0.5
    factor: float = 2.0
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self):
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int) or self.attempts < 1:
            raise ConfigError(f"attempts must be a whole number >= 1, got {self.attempts!r}")
        if not (self.base_delay >= 0 and self.factor >= 1):
            raise ConfigError("base_delay must be >= 0 and factor >= 1")

    def delays(self) -> list[float]:
        """The sleeps between the attempts.

        Examples
        --------
        >>> Retry().delays()
        [0.5, 1.0]
        """
        return [self.base_delay * self.factor ** i for i in range(self.attempts - 1)]


DEFAULT_RETRY = Retry()


@dataclass(frozen=True)
class Delivery:
    """A successful delivery: ``target`` (redacted), ``attempts`` used and the answer's ``status``."""

    target: str
    attempts: int
    status: str


def redact_url(url: str) -> str:
    """Scheme and host of a URL (the path and query of a webhook URL are its secret).

    Examples
    --------
    >>> redact_url("https://hooks.slack.com/services/T000/B000/XXXX?x=1")
    'https://hooks.slack.com/…'
    """
    try:
        p = urllib.parse.urlsplit(url)
        host = p.hostname or ""
        port = f":{p.port}" if p.port else ""
    except ValueError:
        return "<invalid URL>"
    return f"{p.scheme}://{host}{port}/…"


# --------------------------------------------------------------------------- payloads

def detect_style(url: str) -> str:
    """``slack``, ``teams`` or ``generic`` from the webhook's host (module docstring).

    Examples
    --------
    >>> detect_style("https://hooks.slack.com/services/x"), detect_style("https://example.org/hook")
    ('slack', 'generic')
    """
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    if host == "hooks.slack.com":
        return "slack"
    if host.endswith((".webhook.office.com", ".logic.azure.com", ".powerplatform.com")):
        return "teams"
    return "generic"


def summary_line(report: Mapping, *, dataset: str | None = None) -> str:
    """One line: how many rules are breached, in which week, for which dataset.

    Examples
    --------
    >>> summary_line({"week": "2026-W44", "breached": [{}], "evaluated_count": 3}, dataset="Support bot")
    'Chatlens: 1 alert rule breached in 2026-W44 (Support bot)'
    """
    n = len(report.get("breached") or [])
    what = "no alert rule breached" if n == 0 else f"{n} alert rule{'s' if n != 1 else ''} breached"
    week = report.get("week")
    return f"Chatlens: {what}" + (f" in {week}" if week else "") + (f" ({dataset})" if dataset else "")


def _sentences(report: Mapping) -> list[str]:
    """Each breached rule as a sentence (the report's own ``sentence`` when present)."""
    out = []
    for b in report.get("breached") or []:
        if b.get("sentence"):
            out.append(str(b["sentence"]))
            continue
        name = b.get("name") or b.get("rule") or b.get("metric")
        value = b.get("value")
        shown = "" if value is None else f": {value:.4g}" if isinstance(value, float) else f": {value}"
        rule = f" (rule {b.get('rule')})" if b.get("rule") and b.get("rule") != name else ""
        detail = f" — {b['detail']}" if b.get("detail") else ""
        out.append(f"{name}{shown} in {b.get('week')}{rule}{detail}")
    return out


def _slack_escape(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def build_payload(report: Mapping, *, style: str = "generic", dataset: str | None = None) -> dict:
    """The JSON body for ``style`` (module docstring) of an :func:`metrics.improve.alerts.alerts_report`
    object; breached rules may carry a ``sentence`` (added by the CLI from the alert results).

    Examples
    --------
    >>> r = {"week": "2026-W44", "breached": [{"rule": "escalation_rate > 0.3", "name": None,
    ...      "metric": "escalation_rate", "value": 0.35, "week": "2026-W44", "detail": None,
    ...      "sentence": "Escalation rate: 35.0% in 2026-W44 (> 30.0%, breached)"}],
    ...      "not_evaluated": [], "evaluated_count": 3}
    >>> build_payload(r, style="slack")["blocks"][2]["text"]["text"]
    '• Escalation rate: 35.0% in 2026-W44 (&gt; 30.0%, breached)'
    >>> build_payload(r)["breached_count"]
    1
    """
    if style not in ("generic", "slack", "teams"):
        raise ConfigError(f"notification style must be generic, slack or teams, got {style!r}")
    line = summary_line(report, dataset=dataset)
    sentences = _sentences(report)
    skipped = len(report.get("not_evaluated") or [])
    evaluated = int(report.get("evaluated_count") or 0)
    if style == "generic":
        return {"source": "chatlens", "event": "alerts", "dataset": dataset, "week": report.get("week"),
                "breached_count": len(report.get("breached") or []), "breached": list(report.get("breached") or []),
                "not_evaluated": list(report.get("not_evaluated") or []), "evaluated_count": evaluated,
                "text": line}
    context = f"{evaluated} rule(s) evaluated" + (f", {skipped} not evaluated" if skipped else "")
    if style == "slack":
        bullets = "\n".join(f"• {_slack_escape(s)}" for s in sentences) or "No rule is breached."
        facts = [f"*Week:* {_slack_escape(report.get('week') or '—')}"]
        if dataset:
            facts.insert(0, f"*Dataset:* {_slack_escape(dataset)}")
        return {"text": _slack_escape(line), "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": _clip(line, 150), "emoji": False}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(facts)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _clip(bullets, _SLACK_SECTION_LIMIT)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _slack_escape(context)}]},
        ]}
    facts = ([{"title": "Dataset", "value": dataset}] if dataset else []) + [
        {"title": "Week", "value": report.get("week") or "—"}, {"title": "Rules", "value": context}]
    body = [{"type": "TextBlock", "text": line, "weight": "Bolder", "size": "Medium", "wrap": True,
             "color": "Attention" if sentences else "Default"},
            {"type": "FactSet", "facts": facts}]
    body += [{"type": "TextBlock", "text": s, "wrap": True, "spacing": "Small"} for s in sentences]
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
            "version": "1.4", "body": body}
    return {"type": "message", "summary": line,
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
                             "content": card}]}


# --------------------------------------------------------------------------- webhooks

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: a POST redirected becomes a GET without the payload."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _check_url(url: str) -> urllib.parse.SplitResult:
    try:
        p = urllib.parse.urlsplit(url)
        p.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(f"not a valid webhook URL: {redact_url(url)}") from None
    if p.scheme not in ("http", "https") or not p.hostname:
        raise ConfigError(f"a webhook must be an http:// or https:// URL, got {p.scheme or 'no scheme'}:")
    return p


def _opener():
    handlers = [_NoRedirect(), urllib.request.HTTPSHandler(context=ssl.create_default_context())]
    return urllib.request.build_opener(*handlers)


def post_webhook(url: str, payload: Mapping, *, timeout: float = 10.0, retry: Retry = DEFAULT_RETRY) -> Delivery:
    """POST ``payload`` as JSON to ``url`` with retries (module docstring); DeliveryError when it fails."""
    parts = _check_url(url)
    if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
        raise ConfigError(f"timeout must be a positive number of seconds, got {timeout!r}")
    shown = redact_url(url)
    try:
        body = json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"the notification payload is not JSON (NaN or an object?): {exc}") from None
    opener = _opener()
    delays = retry.delays()
    last = ""
    for attempt in range(1, retry.attempts + 1):
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT})
        transient = True
        try:
            with opener.open(request, timeout=timeout) as response:
                status = response.status
                response.read(MAX_RESPONSE_BYTES)
            if 200 <= status < 300:
                return Delivery(shown, attempt, f"HTTP {status}")
            last, transient = f"HTTP {status}", False
        except urllib.error.HTTPError as exc:
            text = exc.read(MAX_RESPONSE_BYTES).decode("utf-8", "replace").strip()[:200] if exc.fp else ""
            if 300 <= exc.code < 400:
                target = urllib.parse.urljoin(url, exc.headers.get("Location", "") or "")
                other = urllib.parse.urlsplit(target).hostname
                where = f" to another host ({other})" if other and other != parts.hostname else ""
                last, transient = f"HTTP {exc.code}: the webhook redirects{where}; redirects are not followed, " \
                                  "use the final URL", False
            else:
                last = f"HTTP {exc.code}" + (f": {text}" if text else "")
                transient = exc.code >= 500 or exc.code in _RETRY_STATUSES
        except (urllib.error.URLError, http.client.HTTPException, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            last = f"{type(reason).__name__}: {reason}" if not isinstance(reason, str) else reason
        if not transient or attempt == retry.attempts:
            break
        retry.sleep(delays[attempt - 1])
    tries = f"after {attempt} attempt{'s' if attempt != 1 else ''}"
    raise DeliveryError(f"the notification to {shown} was not delivered {tries}: {last}")


# --------------------------------------------------------------------------- e-mail

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _flag(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def _address(text: str, what: str) -> str:
    text = str(text).strip()
    if any(c in text for c in "\r\n"):
        raise ConfigError(f"{what} must not contain a line break")
    _, addr = parseaddr(text)
    local, at, domain = addr.rpartition("@")
    if not (at and local and domain) or any(c.isspace() for c in addr):
        raise ConfigError(f"{what} is not an e-mail address: {text!r}")
    return text


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send e-mail (module docstring for the sources and defaults)."""

    host: str
    port: int = 587
    user: str = ""
    password: str = field(default="", repr=False)
    sender: str = ""
    starttls: bool = True
    ssl: bool = False
    timeout: float = 20.0

    def __post_init__(self):
        if not self.host:
            raise ConfigError("no SMTP host: set CHATLENS_SMTP_HOST (or host in the [smtp] table of the "
                              "SMTP config file)")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise ConfigError(f"the SMTP port must be 1-65535, got {self.port!r}")
        if self.starttls and self.ssl:
            raise ConfigError("choose STARTTLS or implicit TLS (ssl), not both")
        sender = self.sender or (self.user if "@" in self.user else "")
        if not sender:
            raise ConfigError("no sender address: set CHATLENS_SMTP_FROM (or from in the [smtp] table)")
        object.__setattr__(self, "sender", _address(sender, "the sender address"))
        if self.password and not (self.starttls or self.ssl) and not _loopback(self.host):
            raise ConfigError("refusing to send the SMTP password without TLS: set CHATLENS_SMTP_STARTTLS=true "
                              "or CHATLENS_SMTP_SSL=true")

    @classmethod
    def load(cls, *, env: Mapping[str, str] | None = None, config_path=None) -> "SmtpSettings":
        """Settings from the config file (``config_path`` or ``CHATLENS_SMTP_CONFIG``), then the
        environment's ``CHATLENS_SMTP_*`` variables, which win.

        Examples
        --------
        >>> s = SmtpSettings.load(env={"CHATLENS_SMTP_HOST": "127.0.0.1", "CHATLENS_SMTP_PORT": "2525",
        ...                            "CHATLENS_SMTP_FROM": "bot@example.org", "CHATLENS_SMTP_STARTTLS": "false"})
        >>> s.host, s.port, s.starttls, s.sender
        ('127.0.0.1', 2525, False, 'bot@example.org')
        """
        env = os.environ if env is None else env
        values: dict = {}
        path = config_path or env.get("CHATLENS_SMTP_CONFIG")
        if path:
            try:
                data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"cannot read the SMTP config file {str(path)!r}: {exc}") from None
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"the SMTP config file {str(path)!r} is not valid TOML: {exc}") from None
            table = data.get("smtp", data)
            if not isinstance(table, dict):
                raise ConfigError("the SMTP config file needs an [smtp] table")
            unknown = sorted(set(table) - {"host", "port", "user", "password", "from", "starttls", "ssl", "timeout"})
            if unknown:
                raise ConfigError(f"unknown key(s) in the SMTP config file: {unknown}")
            values.update(table)
        for key in ("host", "port", "user", "password", "from", "starttls", "ssl", "timeout"):
            name = f"CHATLENS_SMTP_{key.upper()}"
            if env.get(name) not in (None, ""):
                values[key] = env[name]
        try:
            port = int(values.get("port", 587))
            timeout = float(values.get("timeout", 20.0))
        except (TypeError, ValueError):
            raise ConfigError(f"the SMTP port and timeout must be numbers, got {values.get('port')!r}, "
                              f"{values.get('timeout')!r}") from None
        return cls(host=str(values.get("host", "")).strip(), port=port, user=str(values.get("user", "")),
                   password=str(values.get("password", "")), sender=str(values.get("from", "")),
                   starttls=_flag(values.get("starttls", True), "CHATLENS_SMTP_STARTTLS"),
                   ssl=_flag(values.get("ssl", False), "CHATLENS_SMTP_SSL"), timeout=timeout)


def _loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def parse_mailto(target: str) -> tuple[list[str], str | None]:
    """Recipients and optional subject of a ``mailto:`` target.

    Examples
    --------
    >>> parse_mailto("mailto:ops@example.org,lead@example.org?subject=Bot%20alerts")
    (['ops@example.org', 'lead@example.org'], 'Bot alerts')
    """
    p = urllib.parse.urlsplit(target)
    if p.scheme != "mailto":
        raise ConfigError(f"not a mailto: target: {target!r}")
    recipients = [urllib.parse.unquote(a).strip() for a in p.path.split(",") if a.strip()]
    query = urllib.parse.parse_qs(p.query)
    recipients += [a.strip() for v in query.get("to", []) for a in v.split(",") if a.strip()]
    if not recipients:
        raise ConfigError("mailto: needs at least one address, e.g. mailto:ops@example.org")
    recipients = [_address(a, "a recipient") for a in recipients]
    subject = query.get("subject", [None])[0]
    if subject is not None and any(c in subject for c in "\r\n"):
        raise ConfigError("the subject must not contain a line break")
    return recipients, subject


def send_email(recipients: Sequence[str], subject: str, text: str, *, settings: SmtpSettings,
               attachments: Sequence[tuple[str, str, bytes]] = (), retry: Retry = DEFAULT_RETRY) -> Delivery:
    """Send a plain-text e-mail (with ``(filename, mime type, bytes)`` attachments) through SMTP,
    retrying transient failures (module docstring); DeliveryError when it fails."""
    msg = EmailMessage()
    msg["From"] = settings.sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = subject.replace("\r", " ").replace("\n", " ")
    msg.set_content(text)
    for name, mime, data in attachments:
        maintype, _, subtype = mime.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    shown = f"smtp://{settings.host}:{settings.port}"
    delays = retry.delays()
    last = ""
    for attempt in range(1, retry.attempts + 1):
        transient = True
        try:
            if settings.ssl:
                client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout,
                                          context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
            with client:
                if settings.starttls:
                    client.starttls(context=ssl.create_default_context())
                if settings.user:
                    client.login(settings.user, settings.password)
                refused = client.send_message(msg)
            if refused:
                raise DeliveryError(f"the mail server {shown} refused {sorted(refused)}")
            return Delivery(shown, attempt, "sent")
        except smtplib.SMTPAuthenticationError as exc:
            last, transient = f"authentication failed ({exc.smtp_code})", False
        except smtplib.SMTPRecipientsRefused as exc:
            last, transient = f"recipients refused: {sorted(exc.recipients)}", False
        except smtplib.SMTPNotSupportedError as exc:
            last, transient = f"{exc}", False
        except smtplib.SMTPResponseException as exc:
            reply = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
            last, transient = f"SMTP {exc.smtp_code}: {reply}", 400 <= exc.smtp_code < 500
        except (smtplib.SMTPException, OSError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        if not transient or attempt == retry.attempts:
            break
        retry.sleep(delays[attempt - 1])
    raise DeliveryError(f"the e-mail through {shown} was not delivered after {attempt} "
                        f"attempt{'s' if attempt != 1 else ''}: {last}")


# --------------------------------------------------------------------------- dispatch

def notify(target: str, report: Mapping, *, style: str = "auto", dataset: str | None = None,
           smtp: SmtpSettings | None = None, smtp_config=None, timeout: float = 10.0,
           retry: Retry = DEFAULT_RETRY) -> Delivery:
    """Deliver ``report`` (an alerts report) to ``target``: a webhook URL or a ``mailto:``.

    For e-mail the settings come from ``smtp`` or :meth:`SmtpSettings.load` (``smtp_config``);
    the body lists the breached rules and the JSON report is attached as ``alerts.json``.
    """
    if not isinstance(target, str) or not target.strip():
        raise ConfigError("a notification target must be a URL or mailto: address")
    target = target.strip()
    if style not in STYLES:
        raise ConfigError(f"--notify-style must be one of {', '.join(STYLES)}, got {style!r}")
    scheme = urllib.parse.urlsplit(target).scheme.lower()
    if scheme == "mailto":
        recipients, subject = parse_mailto(target)
        settings = smtp or SmtpSettings.load(config_path=smtp_config)
        line = summary_line(report, dataset=dataset)
        lines = [line, ""] + [f"- {s}" for s in _sentences(report)]
        skipped = report.get("not_evaluated") or []
        if skipped:
            lines += ["", "Not evaluated:"] + [f"- {s.get('rule')}: {s.get('reason')}" for s in skipped]
        lines += ["", "The full report is attached as alerts.json."]
        data = json.dumps(build_payload(report, style="generic", dataset=dataset), ensure_ascii=False,
                          indent=2).encode("utf-8")
        return send_email(recipients, subject or line, "\n".join(lines) + "\n", settings=settings,
                          attachments=[("alerts.json", "application/json", data)], retry=retry)
    if scheme in ("http", "https"):
        chosen = detect_style(target) if style == "auto" else style
        return post_webhook(target, build_payload(report, style=chosen, dataset=dataset), timeout=timeout,
                            retry=retry)
    raise ConfigError(f"--notify takes an http(s):// webhook URL or a mailto: address, got {scheme or 'no scheme'}:")
