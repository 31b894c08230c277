"""PII redaction: mask e-mail addresses, phone numbers, payment cards and IBANs in message text.

Chatlens masks personal data in the ``text`` column *at upload*, before anything is stored,
with typed placeholders:

==========  ================================================================================
``<EMAIL>``  an e-mail address (``local@domain.tld``; Unicode letters allowed). Every address
             :data:`metrics.funnel.EMAIL_PATTERN` finds is masked (this pattern is a superset).
``<IBAN>``   an IBAN (2 letters, 2 check digits, the country's length, spaces allowed every
             character) whose ISO 13616 mod-97 check equals 1.
``<CARD>``   a payment-card number: 13-19 digits, written solid or in the usual groups
             (4-4-4-4[-1..3], Amex 4-6-5, Diners 4-6-4) with one kind of separator,
             starting with 2-6 (the card networks), and passing the Luhn check.
``<PHONE>``  a phone number (see below).
==========  ================================================================================

What counts as a phone number
-----------------------------
A run of 7-17 digits, optionally opened by ``+`` or ``(``, with at most two of
``space . - ( )`` between digits; not glued to a word or a handle (``@115913`` stays), not a
date (``2024-01-15``, ``28/11/17``), not an IPv4 address. Such a run is a phone when:

* it starts with ``+`` and has 8-15 digits (E.164); or
* a phone word (phone, call, tel, mobile, cell, WhatsApp, SMS, fax, contact, reach, dial,
  hotline, line ...) occurs in the 30 characters before it and it has 7-15 digits; or,
  unless an *identifier word* (order, ref, reference, case, ticket, tracking, confirmation,
  booking, invoice, account, id, PNR, receipt, transaction, claim, policy, member, ``#`` ...)
  occurs in the 24 characters before it:
* it is written like a North-American number: ``800-222-2377``, ``(555) 123-4567``,
  ``1.877.350.0038``, ``850.266.3576`` (area code 2-9, at least one separator); or
  ``555-0123`` (3-4 digits with a dash or dot);
* it starts with the international prefix ``00`` and has 11-15 digits;
* it starts with a national trunk ``0`` and has 10-11 digits (``0344 556 5650``,
  ``08070635658``);
* it is a bare run of exactly 10 digits starting with 2-9 (``7703743799``).

Anything else stays: order numbers (``Order 111-5014070-4118645``, ``Order# 3632693-6196346``),
reference numbers (``Reference number is 16934380``), 9-digit account numbers, prices, times,
versions, Luhn-invalid 16-digit numbers, Twitter-style handles. It is a heuristic: a 10-digit
order number written without an identifier word before it is masked (the safe side).

Funnel rules and the placeholders
---------------------------------
After redaction the text holds ``<EMAIL>`` / ``<PHONE>`` instead of the address or number, so
a funnel stage "email provided" must match the placeholder: ``user~<EMAIL>`` works on redacted
data, and :data:`EMAIL_RULE_PATTERN` / :data:`PHONE_RULE_PATTERN` (``<EMAIL>|<address regex>``)
match both redacted and raw text. (``<``, ``>`` and the capitals are literal in a regex.)

Speed
-----
:func:`redact_series` works on the distinct texts (a template or greeting repeated in many
messages is checked once and its counts weighted by the number of messages), selects
candidates among them with two vectorised (pyarrow/RE2) tests, "contains ``@``" and
"contains a run of 7+ digits and separators", and runs the Python patterns and the Luhn /
mod-97 checks only on those texts and only on candidate matches.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

__all__ = [
    "EMAIL_PLACEHOLDER",
    "PHONE_PLACEHOLDER",
    "CARD_PLACEHOLDER",
    "IBAN_PLACEHOLDER",
    "PLACEHOLDERS",
    "EMAIL_PATTERN",
    "EMAIL_RULE_PATTERN",
    "PHONE_RULE_PATTERN",
    "IBAN_LENGTHS",
    "PiiSpan",
    "RedactionCounts",
    "luhn_valid",
    "iban_valid",
    "find_pii",
    "redact_text",
    "redact_series",
]

EMAIL_PLACEHOLDER = "<EMAIL>"
PHONE_PLACEHOLDER = "<PHONE>"
CARD_PLACEHOLDER = "<CARD>"
IBAN_PLACEHOLDER = "<IBAN>"
#: kind -> placeholder, in the order the passes run.
PLACEHOLDERS = {"email": EMAIL_PLACEHOLDER, "iban": IBAN_PLACEHOLDER, "card": CARD_PLACEHOLDER,
                "phone": PHONE_PLACEHOLDER}

#: An e-mail address. A superset of :data:`metrics.funnel.EMAIL_PATTERN` (Unicode letters and ``_``
#: are allowed too), so no address the funnel would see survives redaction.
EMAIL_PATTERN = r"[\w.%+\-][\w.%+'\-]*@[\w\-]+(?:\.[\w\-]+)*\.[^\W\d_]{2,}"
#: A funnel regex matching a raw e-mail address or the placeholder (use in ``user~...`` rules).
EMAIL_RULE_PATTERN = re.escape(EMAIL_PLACEHOLDER) + "|" + EMAIL_PATTERN

_PHONE_CANDIDATE = (
    r"(?<![\w@+(])"  # not glued to a word, a handle, or another number
    r"(?:\+|\(\+?|(?<!\d[.\-/]))"  # an opening + or (, or not the tail of a dotted/dashed number
    r"(?!\d{4}-\d{1,2}-\d{1,2}(?!\d))"  # not an ISO date
    r"(?!\d{1,2}[./]\d{1,2}[./]\d{2,4}(?!\d))"  # not a d/m/y date
    r"(?!\d{1,3}(?:\.\d{1,3}){3}(?!\.?\d))"  # not an IPv4 address
    r"\(?\d(?:[ .\-()]{0,2}\d){6,16}"
    r"(?!\w|[.\-/]\d)"
)
#: A funnel regex matching a phone-like number or the placeholder (use in ``user~...`` rules).
PHONE_RULE_PATTERN = re.escape(PHONE_PLACEHOLDER) + "|" + _PHONE_CANDIDATE

_EMAIL_RX = re.compile(EMAIL_PATTERN)
_PHONE_RX = re.compile(_PHONE_CANDIDATE)
_CARD_RX = re.compile(r"(?<![\w.\-+/@])(?<![A-Za-z]{2}\d{2} )\d(?:[ \-]?\d){12,18}(?!\w|[.\-/]\d)")
_IBAN_RX = re.compile(r"(?<![\w@])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}(?!\w)")

_PHONE_WORDS = re.compile(
    r"(?<!<)(?:phone|tel|telephone|mobile|mob|cell|cellphone|call|calling|ring|text\s+me|sms|whats\s?app|fax|"
    r"contact|reach|dial|hotline|helpline|landline|line|numero|nummer|handy)\b", re.IGNORECASE)
_ID_WORDS = re.compile(
    r"(?:order|ord|ref|reference|case|ticket|tracking|track|confirmation|conf|booking|invoice|inv|account|acct|"
    r"id|pnr|awb|serial|sku|po|transaction|txn|receipt|policy|claim|member|membership|customer|cust|"
    r"shipment|parcel|package|item|product|model|flight|zip|postcode|postal|pin|otp|code)\b|#", re.IGNORECASE)
_NANP = re.compile(r"(?:\+?1[ .\-]?)?(?:\([2-9]\d{2}\)|[2-9]\d{2})[ .\-]?\d{3}[ .\-]\d{4}")
_LOCAL7 = re.compile(r"\d{3}[.\-]\d{4}")
_CARD_GROUPS = {(4, 6, 5), (4, 6, 4)}

#: ISO 13616 IBAN length by country (SWIFT IBAN registry).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25,
    "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18,
    "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
    "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}

#: Vectorised (RE2) pre-filters: a row can hold PII only if one of these matches.
_PREFILTER_AT = "@"
_PREFILTER_DIGITS = r"\p{Nd}[\p{Nd} ().\-]{5,}\p{Nd}|\p{Nd}{2}(?: ?\w){11}"


@dataclass(frozen=True)
class PiiSpan:
    """One piece of personal data found in a text: ``text[start:end]`` is of ``kind``
    (``email``, ``iban``, ``card`` or ``phone``)."""

    start: int
    end: int
    kind: str

    @property
    def placeholder(self) -> str:
        return PLACEHOLDERS[self.kind]


@dataclass(frozen=True)
class RedactionCounts:
    """How much :func:`redact_series` masked: matches per kind, and messages changed."""

    email_count: int = 0
    phone_count: int = 0
    card_count: int = 0
    iban_count: int = 0
    message_count: int = 0

    @property
    def total_count(self) -> int:
        """All masked matches (the four kinds together)."""
        return self.email_count + self.phone_count + self.card_count + self.iban_count

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def summary(self) -> str:
        """A one-line notice for the validation report.

        Examples
        --------
        >>> RedactionCounts(email_count=2, phone_count=1, message_count=2).summary()
        'Masked personal data in 2 message(s): 2 e-mail address(es), 1 phone number(s).'
        >>> RedactionCounts().summary()
        'No e-mail address, phone, card number or IBAN found to mask.'
        """
        if self.total_count == 0:
            return "No e-mail address, phone, card number or IBAN found to mask."
        parts = [f"{n} {label}" for n, label in ((self.email_count, "e-mail address(es)"),
                                                 (self.phone_count, "phone number(s)"),
                                                 (self.card_count, "card number(s)"),
                                                 (self.iban_count, "IBAN(s)")) if n]
        return f"Masked personal data in {self.message_count} message(s): {', '.join(parts)}."


# --------------------------------------------------------------------------- checks

def luhn_valid(number: str) -> bool:
    """True when the digits of ``number`` pass the Luhn (mod 10) check; non-digits are ignored.

    Fewer than two digits is False.

    Examples
    --------
    >>> luhn_valid("4111 1111 1111 1111"), luhn_valid("4111 1111 1111 1112")
    (True, False)
    """
    digits = [int(c) for c in str(number) if c.isdigit()]
    if len(digits) < 2:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """True when ``iban`` (spaces ignored, any case) has its country's length and mod 97 == 1.

    A country missing from :data:`IBAN_LENGTHS` needs 15-34 characters.

    Examples
    --------
    >>> iban_valid("DE89 3704 0044 0532 0130 00"), iban_valid("DE89 3704 0044 0532 0130 01")
    (True, False)
    """
    compact = re.sub(r"\s+", "", str(iban)).upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]+", compact):
        return False
    expected = IBAN_LENGTHS.get(compact[:2])
    if expected is not None and len(compact) != expected:
        return False
    if expected is None and not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    numeric = "".join(str(int(c, 36)) for c in rearranged)
    return int(numeric) % 97 == 1


# --------------------------------------------------------------------------- finding

def _iban_span(text: str, m: re.Match) -> tuple[int, int] | None:
    """The valid IBAN at the start of the candidate ``m`` (which may run into a following word)."""
    raw = m.group(0)
    country = raw[:2].upper()
    alnum_positions = [i for i, c in enumerate(raw) if c != " "]
    lengths = [IBAN_LENGTHS[country]] if country in IBAN_LENGTHS else range(min(34, len(alnum_positions)), 14, -1)
    for length in lengths:
        if length > len(alnum_positions):
            continue
        end = alnum_positions[length - 1] + 1
        if end < len(raw) and raw[end] != " ":
            continue  # would cut a group in two
        if iban_valid(raw[:end]):
            return m.start(), m.start() + end
    return None


def _is_card(raw: str) -> bool:
    digits = re.sub(r"\D", "", raw)
    if not 13 <= len(digits) <= 19 or digits[0] not in "23456":
        return False
    separators = set(re.findall(r"[ \-]", raw))
    if len(separators) > 1:
        return False
    if separators:
        groups = tuple(len(g) for g in re.split(r"[ \-]", raw))
        four_blocks = all(g == 4 for g in groups[:-1]) and 1 <= groups[-1] <= 4 and len(groups) >= 4
        if not four_blocks and groups not in _CARD_GROUPS:
            return False
    return luhn_valid(digits)


def _is_phone(text: str, start: int, raw: str) -> bool:
    digits = re.sub(r"\D", "", raw)
    n = len(digits)
    if raw.lstrip("(").startswith("+"):
        return 8 <= n <= 15
    if n > 15:
        return False
    before = text[max(0, start - 30):start]
    if _PHONE_WORDS.search(before):
        return True
    if _ID_WORDS.search(text[max(0, start - 24):start]):
        return False
    if _NANP.fullmatch(raw) and re.search(r"[ .\-()]", raw):
        return True
    if _LOCAL7.fullmatch(raw):
        return True
    if digits.startswith("00"):
        return 11 <= n <= 15
    if digits.startswith("0"):
        return 10 <= n <= 11
    return n == 10 and raw.isdigit() and digits[0] in "23456789"


def find_pii(text: str) -> list[PiiSpan]:
    """Every e-mail, IBAN, card and phone number in ``text``, as non-overlapping spans by position.

    Passes run in that order; each later pass sees the earlier finds blanked out (so a phone
    glued to an address, ``a@b.io+44 20 7946 0958``, is still a phone) and never takes their
    characters. Non-text input gives ``[]``.

    Examples
    --------
    >>> [(s.kind, "a@b.io call +44 20 7946 0958"[s.start:s.end]) for s in find_pii("a@b.io call +44 20 7946 0958")]
    [('email', 'a@b.io'), ('phone', '+44 20 7946 0958')]
    """
    if not isinstance(text, str) or not text:
        return []
    spans: list[PiiSpan] = [PiiSpan(m.start(), m.end(), "email") for m in _EMAIL_RX.finditer(text)]
    masked = _blank(text, spans)
    for m in _IBAN_RX.finditer(masked):
        found = _iban_span(masked, m)
        if found:
            spans.append(PiiSpan(found[0], found[1], "iban"))
    masked = _blank(text, spans)
    for m in _CARD_RX.finditer(masked):
        if _is_card(m.group(0)):
            spans.append(PiiSpan(m.start(), m.end(), "card"))
    masked = _blank(text, spans)
    for m in _PHONE_RX.finditer(masked):
        raw = m.group(0)
        if _is_phone(masked, m.start(), raw):
            # a "(" opening that is not closed inside the number belongs to the sentence
            start = m.start() + 1 if raw.startswith("(") and ")" not in raw else m.start()
            spans.append(PiiSpan(start, m.end(), "phone"))
    return sorted(spans, key=lambda s: s.start)


def _blank(text: str, spans: list[PiiSpan]) -> str:
    """``text`` with the found spans overwritten by spaces (same length: positions stay valid)."""
    if not spans:
        return text
    chars = list(text)
    for s in spans:
        chars[s.start:s.end] = " " * (s.end - s.start)
    return "".join(chars)


def _apply(text: str, spans: list[PiiSpan]) -> str:
    out, last = [], 0
    for s in spans:
        out.append(text[last:s.start])
        out.append(s.placeholder)
        last = s.end
    out.append(text[last:])
    return "".join(out)


def _redact(text: str, counts: dict | None = None) -> str:
    """Mask until nothing is found (a placeholder can un-glue a neighbour); every span holds an ``@`` or a
    digit and no placeholder does, so this ends."""
    while True:
        spans = find_pii(text)
        if not spans:
            return text
        if counts is not None:
            for s in spans:
                counts[s.kind] += 1
        text = _apply(text, spans)


def redact_text(text: str) -> str:
    """``text`` with every span of :func:`find_pii` replaced by its placeholder.

    Idempotent: masking repeats until nothing is found, so redacting twice changes nothing
    more. Non-text input (None, NA, NaN) is returned unchanged.

    Examples
    --------
    >>> redact_text("Mail jane.doe@example.co.uk, card 4111 1111 1111 1111, call 800-222-2377.")
    'Mail <EMAIL>, card <CARD>, call <PHONE>.'
    >>> redact_text("@AmazonHelp Order 111-5014070-4118645, IBAN DE89 3704 0044 0532 0130 00")
    '@AmazonHelp Order 111-5014070-4118645, IBAN <IBAN>'
    """
    if not isinstance(text, str):
        return text
    return _redact(text)


def redact_series(series: pd.Series) -> tuple[pd.Series, RedactionCounts]:
    """Redact every text of ``series``; returns ``(redacted, counts)``.

    The result has the input's index and the ``str`` dtype (missing values stay missing);
    the input is not modified. Each distinct text is redacted once (counts are per message);
    texts are pre-selected with vectorised tests (a ``@``, or a run of 7+ digits and
    separators), so a million short messages take well under a second.
    An empty series gives an empty series and zero counts.

    Examples
    --------
    >>> out, counts = redact_series(pd.Series(["hi", "me@x.org", None, "call 0344 556 5650"]))
    >>> out.tolist(), counts.email_count, counts.phone_count, counts.message_count
    (['hi', '<EMAIL>', nan, 'call <PHONE>'], 1, 1, 2)
    """
    if not isinstance(series, pd.Series):
        raise TypeError(f"redact_series expects a pandas Series, got {type(series).__name__}")
    text = series.astype("str")
    if len(text) == 0:
        return text.copy(), RedactionCounts()
    # Work on the distinct texts (chat logs repeat greetings and bot templates): each is pre-filtered
    # and redacted once, and its counts are weighted by how many messages hold it.
    codes, uniques = pd.factorize(text)  # code -1 for a missing text
    distinct = pd.Series(uniques, dtype="str")
    candidate = (distinct.str.contains(_PREFILTER_AT, regex=False, na=False)
                 | distinct.str.contains(_PREFILTER_DIGITS, regex=True, na=False)).to_numpy(dtype=bool)
    positions = np.flatnonzero(candidate)
    if not len(positions):
        return text.copy(), RedactionCounts()
    counts = {"email": 0, "phone": 0, "card": 0, "iban": 0}
    messages = np.bincount(codes[codes >= 0], minlength=len(distinct))  # messages holding each text
    values = distinct.to_numpy(dtype=object, na_value=None)
    replaced: dict[int, str] = {}
    for pos in positions:
        value = values[pos]
        found = {"email": 0, "phone": 0, "card": 0, "iban": 0}
        redacted = _redact(value, found)
        for kind, number in found.items():
            counts[kind] += number * int(messages[pos])
        if redacted != value:
            replaced[int(pos)] = redacted
    out = text.copy()
    changed_count = 0
    if replaced:
        slot = np.full(len(distinct) + 1, -1)  # distinct text -> index into the redacted texts (-1: unchanged)
        slot[list(replaced)] = np.arange(len(replaced))
        which = slot[codes]  # code -1 (missing) reads the last slot, which is -1
        rows = np.flatnonzero(which >= 0)
        out.iloc[rows] = np.array(list(replaced.values()), dtype=object)[which[rows]]
        changed_count = len(rows)
    return out, RedactionCounts(email_count=counts["email"], phone_count=counts["phone"],
                                card_count=counts["card"], iban_count=counts["iban"],
                                message_count=changed_count)
