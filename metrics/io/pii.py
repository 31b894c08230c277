"""PII redaction: mask e-mail addresses, phone numbers, payment cards and IBANs in message text,
and pseudonymise identifiers.

Chatlens masks personal data *at upload*, before anything is stored. Free-text fields (``text``,
``topic``, ``escalation_reason``) go through :func:`redact_series`, which puts typed placeholders
in place of what it finds:

==========  ================================================================================
``<EMAIL>``  an e-mail address (``local@domain.tld``; Unicode letters allowed). Every address
             :data:`metrics.funnel.EMAIL_PATTERN` finds is masked (this is a superset).
``<IBAN>``   an IBAN of a registry country (2 letters, 2 check digits, the country's length;
             written compact, or with spaces or dashes between any characters) whose ISO 13616
             mod-97 check equals 1.
``<CARD>``   a payment-card number: 13-19 digits, written solid or in the usual groups
             (4-4-4-4[-1..3], Amex 4-6-5, Diners 4-6-4) with one kind of separator (space, dash
             or dot), starting with 2-6 (the card networks), passing the Luhn check, and not
             introduced by a device/product word (IMEI, serial, GTIN ...: those pass Luhn too).
``<PHONE>``  a phone number (see below).
==========  ================================================================================

Identifiers are different: they must stay unique and stable so that conversations and repeat
users still count. :func:`pseudonymise` replaces each id by a keyed hash (``u_3f2a9c0d1e2b4a5f``,
for ``user_id``); :func:`redact_ids` masks only the personal data inside an id and keeps the rest
(``whatsapp:+14155550132`` becomes ``whatsapp:<PHONE:...>``, for ``conversation_id``).

What counts as a phone number
-----------------------------
A candidate is a run of 7-17 digits, optionally opened by ``+`` or ``(``, with at most two of
``space . - ( ) /`` between digits; not glued to a (Latin, Cyrillic ...) word, a handle or an
identifier (``@115913``, ``PP-006-234-348-863`` stay; Chinese or Japanese text may touch it:
``手机号13800138000``), not a date (``2024-01-15``, ``2024/01/15``, ``28/11/17``, ``15-03-2024``),
not an IPv4 address. A candidate is a phone when:

* it starts with ``+`` and has 8-15 digits (E.164); otherwise it has at most 15 digits, and
* the word nearest before it is not an *identifier word* (order, ref, ticket, tracking, invoice,
  account, id, code, IMEI, ISBN, SSN, Nr, build, version, Bestellung, commande, pedido, заказ,
  订单 ..., or a ``#`` not glued to a word) in the 24 characters before it -- a *phone word*
  (phone, tel, call, mobile, WhatsApp, Handy, portable, móvil, celular, телефон, 电话, 携帯 ...,
  also ``Phone#``) in the 30 characters before it wins when it is nearer
  (``numéro de commande 100234567`` is an order number); and
* it starts with the international prefix ``00`` and has 11-15 digits; or else it is not shaped
  like something else (a thousands-grouped amount ``1 234 567``, a year range or list
  ``2019-2024``, a decimal ``48.858370``, a version or build ``10.0.19045.3803`` -- a group of one
  digit after the first --, an SSN-shaped ``123-45-6789``) and:
  - a phone word precedes it; or
  - written as bare digits, it has a trunk ``0`` and 10-11 digits (``08070635658``), or 10
    digits starting with 2-9 (``7703743799``, North America, India), or 11 digits that
    :mod:`phonenumbers` accepts (``13800138000``); a bare 7-9 digit run (``615787351``) needs a
    phone word;
  - written in groups, it is a North-American number (``800-222-2377``, ``(555) 123-4567``,
    ``1.877.350.0038``, ``555-0123``), or :class:`phonenumbers.PhoneNumberMatcher` finds all of it
    as a valid number of one of :data:`PHONE_REGIONS`, grouped as that country groups its numbers
    (``Leniency.STRICT_GROUPING``: ``01.23.45.67.89``, ``(11) 91234-5678``, ``138 0013 8000``,
    ``8 (495) 123-45-67``, ``55 1234 5678``, ``098765 43210`` ...; ``1234 5678`` and ``2000-3000``
    are not), or it has a trunk ``0`` and 10-11 digits (``0344 556 5650``, for countries outside
    :data:`PHONE_REGIONS`).

Anything else stays: order numbers (``Order 111-5014070-4118645``, ``Order# 3632693-6196346``),
reference numbers (``Reference number is 16934380``), 9-digit account numbers, prices, times,
versions, Luhn-invalid 16-digit numbers, Twitter-style handles. It is a heuristic: a 10-digit
order number written without an identifier word before it is masked (the safe side), and so is
a US-formatted number of another kind (a UK NHS number ``943 476 5919``).

Bounded work
------------
Every pattern here runs in linear time on any input (``tests/metrics/io/test_regex_linear.py`` times each
one on 250 KB and 500 KB pathological inputs). E-mail addresses are anchored at the start of a
run of address characters (a possessive run, so no start inside a run is ever retried) and the
domain is matched label by label possessively; a local part longer than 64 characters (RFC 5321)
is masked by its last 64. Phones, cards and IBANs use bounded repetitions only. The
:mod:`phonenumbers` look-ups are cached per written number and capped per text
(:data:`PHONE_LOOKUPS_PER_TEXT`; past the cap the plain rules above decide), and the regions
asked about a number are first narrowed by their trunk prefix and possible lengths. Masking
repeats while a pass finds something (a placeholder can un-glue a neighbour), at most 8 passes.

Funnel rules and the placeholders
---------------------------------
After redaction the text holds ``<EMAIL>`` / ``<PHONE>`` instead of the address or number, so
a funnel stage "email provided" must match the placeholder: ``user~<EMAIL>`` works on redacted
data, and :data:`EMAIL_RULE_PATTERN` / :data:`PHONE_RULE_PATTERN` (``<EMAIL>|<address regex>``)
match both redacted and raw text. (``<``, ``>`` and the capitals are literal in a regex.) The
funnel masks the texts it shows with this module too (:func:`metrics.funnel.mask_contact_details`
is :func:`redact_text`): there is one masker.

Speed
-----
:func:`redact_series` works on the distinct texts (a template or greeting repeated in many
messages is checked once and its counts weighted by the number of messages), selects
candidates among them with two vectorised (pyarrow/RE2) tests, "contains ``@``" and
"contains a run of 7+ digits and separators", and runs the Python patterns, the Luhn /
mod-97 checks and the phone look-ups only on those texts and only on candidate matches.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import phonenumbers

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
    "PHONE_REGIONS",
    "PHONE_LOOKUPS_PER_TEXT",
    "PiiSpan",
    "RedactionCounts",
    "luhn_valid",
    "iban_valid",
    "find_pii",
    "redact_text",
    "redact_series",
    "pseudonymise",
    "redact_ids",
]

EMAIL_PLACEHOLDER = "<EMAIL>"
PHONE_PLACEHOLDER = "<PHONE>"
CARD_PLACEHOLDER = "<CARD>"
IBAN_PLACEHOLDER = "<IBAN>"
#: kind -> placeholder, in the order the passes run.
PLACEHOLDERS = {"email": EMAIL_PLACEHOLDER, "iban": IBAN_PLACEHOLDER, "card": CARD_PLACEHOLDER,
                "phone": PHONE_PLACEHOLDER}

#: Regions whose national formats are recognised (ISO 3166 codes, tried in this order). Numbers
#: written with ``+`` or ``00`` need no region.
PHONE_REGIONS: tuple[str, ...] = (
    "US", "GB", "IN", "FR", "DE", "ES", "IT", "NL", "BR", "MX", "CN", "RU", "JP", "AU", "ZA", "NG",
    "CA", "IE", "PL", "PT", "BE", "CH", "AT", "SE", "TR", "KR", "PH", "ID", "PK", "KE", "EG", "AE",
    "AR", "CO", "SG",
)
#: At most this many phone candidates of one text (all masking passes together) are looked up in
#: :mod:`phonenumbers`; the rest are decided by the plain rules (a hostile text of thousands of
#: numbers stays cheap). A text with more such numbers may have a few more masked by a second
#: redaction; below it, redaction is idempotent.
PHONE_LOOKUPS_PER_TEXT = 50

# --------------------------------------------------------------------------- patterns

#: An e-mail address: a whole run of local-part characters (possessive, starting where the run
#: starts, so the match is linear), ``@``, dot-separated labels and a 2+ letter top-level domain.
#: A superset of :data:`metrics.funnel.EMAIL_PATTERN` (Unicode letters, ``_`` and ``'`` too), so
#: no address the funnel would see survives redaction. Safe to run on any text: linear time.
EMAIL_PATTERN = r"(?<![\w.%+'\-])[\w.%+'\-]++@(?:[\w\-]++\.)+[^\W\d_]{2,}"
#: A funnel regex matching a raw e-mail address or the placeholder (use in ``user~...`` rules).
EMAIL_RULE_PATTERN = re.escape(EMAIL_PLACEHOLDER) + "|" + EMAIL_PATTERN
_LOCAL_MAX = 64  # RFC 5321 4.5.3.1.1

#: Letters of scripts written without spaces (CJK ideographs, kana, hangul): a number or an
#: address may touch them (``手机号13800138000``).
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
#: A word character other than those: a number glued to one is part of a word.
_W = rf"[^\W{_CJK}]"
_CJK_RX = re.compile(rf"[{_CJK}]")

_PHONE_CANDIDATE = (
    rf"(?<![@+(])(?<!{_W})(?<!{_W}-)"  # not glued to a word (PP-006-...), a handle, or another number
    r"(?:\+|\(\+?|(?<!\d[.\-/]))"  # an opening + or (, or not the tail of a dotted/dashed number
    r"(?!\d{4}[\-./]\d{1,2}[\-./]\d{1,2}(?!\d|[\-./]\d))"  # not a y-m-d date (2024-01-15, 2024/01/15)
    r"(?!\d{1,2}[\-./]\d{1,2}[\-./]\d{2,4}(?!\d|[\-./]\d))"  # not a d/m/y date (a longer run is no date)
    r"(?!\d{1,3}(?:\.\d{1,3}){3}(?!\.?\d))"  # not an IPv4 address
    r"\(?\d(?:[ .\-()/]{0,2}\d){6,16}"
    rf"(?!{_W}|[.\-/]\d)"
)
#: A funnel regex matching a phone-like number or the placeholder (use in ``user~...`` rules).
PHONE_RULE_PATTERN = re.escape(PHONE_PLACEHOLDER) + "|" + _PHONE_CANDIDATE

_EMAIL_RX = re.compile(EMAIL_PATTERN)
_PHONE_RX = re.compile(_PHONE_CANDIDATE)
_CARD_RX = re.compile(r"(?<![\w.\-+/@])(?<![A-Za-z]{2}\d{2}[ \-])\d(?:[ .\-]?\d){12,18}(?!\w|[.\-/]\d)")
_IBAN_RX = re.compile(r"(?<![\w@])[A-Za-z]{2}\d{2}(?:[ \-]?[A-Za-z0-9]){11,30}(?!\w)")
_SEPARATORS_RX = re.compile(r"[^\d]+")

#: Words that announce a phone number (any case), and those written without spaces around them.
_PHONE_WORDS = frozenset("""
    phone tel tél telephone téléphone telefon telefone teléfono telefono telefoon mobile mob mobil mobiel
    cell cellphone cellulare celular cel móvil movil portable handy call calling ring sms whatsapp zap fax
    contact contacto contatto kontakt reach dial hotline helpline landline line numero número numéro nummer
    appelez appelle appeler joindre anrufen ruf llámame llamame llama llamar liga ligue ligar chiamami
    chiamare bel bellen zadzwoń zadzwon komórka ara arayın nipigie телефон тел позвоните звоните звонить
    мобильный""".split())
_PHONE_PAIRS = frozenset({("text", "me"), ("whats", "app")})
_PHONE_WORDS_CJK = ("电话", "手机", "联系", "電話", "携帯", "전화", "휴대폰")
#: Words that announce an identifier (order, ticket, device, product numbers ...), and ``#`` not glued
#: to a word ("Phone#" is a phone word, "ticket #123" an identifier).
_ID_WORDS = frozenset("""
    order ord ref reference case ticket tracking track confirmation conf booking invoice inv account acct id
    pnr awb serial sku po transaction txn receipt policy claim member membership customer cust shipment
    parcel package item product model flight zip postcode postal pin otp code isbn issn gtin ean upc imei
    meid iccid ssn ein vat tax nr build version ver kb error err bestellung bestellnummer rechnung auftrag
    kundennummer commande facture référence dossier pedido factura referencia ordine fattura заказ счет
    счёт""".split())
_ID_WORDS_CJK = ("订单", "单号", "编号", "注文")
#: Words before a Luhn-valid number that make it a device or product number, not a card.
_CARD_BLOCK_WORDS = frozenset({"imei", "meid", "iccid", "serial", "sn", "gtin", "ean", "isbn", "tracking"})
_TOKEN_RX = re.compile(r"[^\W\d_]+|(?<![^\W\d_])#")
_NANP = re.compile(r"(?:\+?1[ .\-]?)?(?:\([2-9]\d{2}\)|[2-9]\d{2})[ .\-]?\d{3}[ .\-]\d{4}")
_LOCAL7 = re.compile(r"\d{3}[.\-]\d{4}")
_YEAR_RANGE = re.compile(r"(?:19|20)\d\d(?:[ \-/](?:19|20)\d\d)+")
_SSN_SHAPE = re.compile(r"\d{3}-\d{2}-\d{4}")
_CARD_GROUPS = {(4, 6, 5), (4, 6, 4)}
_ID_TOKEN_RX = re.compile(r"<(?:EMAIL|PHONE|CARD|IBAN):[0-9a-f]{16}>")

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
_PREFILTER_DIGITS = r"\p{Nd}[\p{Nd} ()./\-]{5,}\p{Nd}|\p{Nd}{2}(?:[ \-]?\w){11}"


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
    digits = [int(c) for c in str(number) if c.isdecimal()]
    if len(digits) < 2:
        return False
    return (sum(digits[-1::-2]) + sum(_LUHN_DOUBLED[d] for d in digits[-2::-2])) % 10 == 0


_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)  # d -> the digit sum of 2d


def iban_valid(iban: str) -> bool:
    """True when ``iban`` (spaces and dashes ignored, any case) is of a registry country
    (:data:`IBAN_LENGTHS`), has that country's length and its mod-97 check is 1.

    Examples
    --------
    >>> iban_valid("DE89 3704 0044 0532 0130 00"), iban_valid("DE89 3704 0044 0532 0130 01")
    (True, False)
    >>> iban_valid("DE89-3704-0044-0532-0130-00"), iban_valid("XY12 ABCD 1234 5678 9")
    (True, False)
    """
    compact = re.sub(r"[\s\-]+", "", str(iban)).upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]+", compact) or len(compact) > 34:
        return False
    if IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    numeric = "".join(str(int(c, 36)) for c in rearranged)
    return int(numeric) % 97 == 1


# --------------------------------------------------------------------------- e-mail

def _email_spans(text: str) -> list[PiiSpan]:
    spans = []
    for m in _EMAIL_RX.finditer(text):
        at = m.start() + m.group().index("@")
        start = max(m.start(), at - _LOCAL_MAX)
        # CJK text may touch the address (邮箱wang.fang@163.com); a leading quote is punctuation
        cjk_end = max((c.end() for c in _CJK_RX.finditer(text, start, at)), default=at)
        if cjk_end < at:
            start = cjk_end
        while start < at and text[start] == "'":
            start += 1
        if start < at:
            spans.append(PiiSpan(start, m.end(), "email"))
    return spans


# --------------------------------------------------------------------------- IBAN and cards

def _iban_span(text: str, m: re.Match) -> tuple[int, int] | None:
    """The valid IBAN at the start of the candidate ``m`` (which may run into a following word)."""
    raw = m.group(0)
    expected = IBAN_LENGTHS.get(raw[:2].upper())
    if expected is None:
        return None
    alnum_positions = [i for i, c in enumerate(raw) if c not in " -"]
    if expected > len(alnum_positions):
        return None
    end = alnum_positions[expected - 1] + 1
    if end < len(raw) and raw[end] not in " -":
        return None  # would cut a group in two
    if iban_valid(raw[:end]):
        return m.start(), m.start() + end
    return None


def _is_card(text: str, start: int, raw: str) -> bool:
    digits = _SEPARATORS_RX.sub("", raw)
    if not 13 <= len(digits) <= 19 or digits[0] not in "23456":
        return False
    separators = {c for c in raw if not c.isdecimal()}
    if len(separators) > 1:
        return False
    if separators:
        groups = tuple(len(g) for g in raw.split(next(iter(separators))))
        four_blocks = all(g == 4 for g in groups[:-1]) and 1 <= groups[-1] <= 4 and len(groups) >= 4
        if not four_blocks and groups not in _CARD_GROUPS:
            return False
    return luhn_valid(digits) and not any(w in _CARD_BLOCK_WORDS for w in _words_before(text, start, 24)[0])


# --------------------------------------------------------------------------- phones

@functools.cache
def _region_info(region: str) -> tuple[str, frozenset[int]]:
    """A region's national trunk prefix ("" if none or not plain digits) and possible national
    lengths, from the metadata (loaded on first use)."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if meta is None or meta.general_desc is None:
        return "", frozenset()
    prefix = meta.national_prefix if meta.national_prefix and meta.national_prefix.isdigit() else ""
    return prefix, frozenset(meta.general_desc.possible_length or ())


@functools.lru_cache(maxsize=65536)
def _national_phone(raw: str, regions: tuple[str, ...]) -> bool:
    """True when :class:`phonenumbers.PhoneNumberMatcher` finds all of ``raw`` (a number written in
    national format) as a valid number of one of ``regions``, grouped as that country groups its
    numbers (``Leniency.STRICT_GROUPING``: ``06 12 34 56 78`` and ``0612345678`` are French phones,
    ``0612 3 45678`` is not). Regions whose trunk prefix and possible lengths rule the number out
    are not asked. Cached by the written form."""
    digits = _SEPARATORS_RX.sub("", raw)
    for region in regions:
        prefix, lengths = _region_info(region)
        national = digits[len(prefix):] if prefix and digits.startswith(prefix) else digits
        if lengths and len(national) not in lengths and len(digits) not in lengths:
            continue
        for match in phonenumbers.PhoneNumberMatcher(raw, region, leniency=phonenumbers.Leniency.STRICT_GROUPING):
            if match.start == 0 and match.end == len(raw):
                return True
    return False


def _looks_like_something_else(raw: str) -> bool:
    """A thousands-grouped amount, a year range or list, a decimal, a version or build number, an
    SSN-shaped number."""
    groups = [g for g in _SEPARATORS_RX.split(raw) if g]
    if len(groups) > 1 and any(len(g) == 1 for g in groups[1:]):
        return True  # 10.0.19045.3803, 1 2 3 4 5 6 7
    separators = {c for c in raw if not c.isdecimal()}
    if separators == {"."} and len(groups) == 2:
        return True  # 48.858370
    if separators <= {" ", "."} and len(separators) == 1 and len(groups) > 2 and len(groups[0]) <= 2 \
            and all(len(g) == 3 for g in groups[1:]):
        return True  # 1 234 567, 12.345.678
    return bool(_YEAR_RANGE.fullmatch(raw) or _SSN_SHAPE.fullmatch(raw))  # 2019-2024; 123-45-6789, DPCI 030-02-8711


def _is_phone(text: str, start: int, raw: str, regions: tuple[str, ...], budget: list[int]) -> bool:
    digits = _SEPARATORS_RX.sub("", raw)
    n = len(digits)
    if raw.lstrip("(").startswith("+"):
        return 8 <= n <= 15
    if n > 15:
        return False
    # the word nearest the number decides: "numéro de commande 100234567" is an order number
    phone_word, id_word = _nearest_words(text, start)
    if id_word > phone_word:
        return False
    if digits.startswith("00"):
        return 11 <= n <= 15
    if _looks_like_something_else(raw):
        return False
    if phone_word >= 0:
        return True
    if n == len(raw):  # bare digits: a trunk 0, 10 digits as in North America or India, or a valid 11
        if digits.startswith("0"):
            return 10 <= n <= 11
        if n == 10:
            return digits[0] in "23456789"
        return n == 11 and _lookup(raw, regions, budget)
    if _NANP.fullmatch(raw) or _LOCAL7.fullmatch(raw) or _lookup(raw, regions, budget):
        return True
    return digits.startswith("0") and 10 <= n <= 11


def _words_before(text: str, start: int, width: int) -> tuple[list[str], list[int]]:
    """The lower-cased words (and lone ``#``) in the ``width`` characters before ``start``, and where
    each starts; a word cut by the window's edge is left out."""
    lo = max(0, start - width)
    words, starts = [], []
    for m in _TOKEN_RX.finditer(text, lo, start):
        if m.start() == lo and lo and text[lo - 1].isalpha():
            continue
        if m.start() and text[m.start() - 1] == "<":
            continue  # a placeholder (<PHONE>) from an earlier pass
        words.append(m.group().lower())
        starts.append(m.start())
    return words, starts


def _nearest_words(text: str, start: int) -> tuple[int, int]:
    """Where the last phone word of the 30 characters before ``start`` starts, and the last
    identifier word of the 24 before (-1: none)."""
    words, starts = _words_before(text, start, 30)
    phone = ident = -1
    for i, (word, at) in enumerate(zip(words, starts)):
        if word in _PHONE_WORDS or (i and (words[i - 1], word) in _PHONE_PAIRS):
            phone = at
        elif (word in _ID_WORDS or word == "#") and at >= start - 24:
            ident = at
    lo = max(0, start - 30)
    if not text[lo:start].isascii():
        for word in _PHONE_WORDS_CJK:
            phone = max(phone, text.rfind(word, lo, start))
        for word in _ID_WORDS_CJK:
            ident = max(ident, text.rfind(word, max(0, start - 24), start))
    return phone, ident


def _lookup(raw: str, regions: tuple[str, ...], budget: list[int]) -> bool:
    """:func:`_national_phone`, while the look-up budget of the redaction lasts."""
    if budget[0] <= 0:
        return False
    budget[0] -= 1
    return _national_phone(raw.lstrip("(") if ")" not in raw else raw, regions)


# --------------------------------------------------------------------------- finding

def find_pii(text: str, *, regions: Sequence[str] = PHONE_REGIONS) -> list[PiiSpan]:
    """Every e-mail, IBAN, card and phone number in ``text``, as non-overlapping spans by position.

    Passes run in that order; each later pass sees the earlier finds blanked out (so a phone
    glued to an address, ``a@b.io+44 20 7946 0958``, is still a phone) and never takes their
    characters. ``regions`` are the countries whose national phone formats are recognised.
    Non-text input gives ``[]``.

    Examples
    --------
    >>> text = "a@b.io call +44 20 7946 0958 or 01.23.45.67.89"
    >>> [(s.kind, text[s.start:s.end]) for s in find_pii(text)]
    [('email', 'a@b.io'), ('phone', '+44 20 7946 0958'), ('phone', '01.23.45.67.89')]
    >>> find_pii("Order 111-5014070-4118645 shipped on 2024-01-15")
    []
    """
    if not isinstance(text, str) or not text:
        return []
    return _find(text, tuple(regions), [PHONE_LOOKUPS_PER_TEXT])


def _find(text: str, regions: tuple[str, ...], budget: list[int]) -> list[PiiSpan]:
    """:func:`find_pii` with a phone look-up budget the caller may share between calls."""
    spans: list[PiiSpan] = _email_spans(text) if "@" in text else []
    masked = _blank(text, spans)
    for m in _IBAN_RX.finditer(masked):
        found = _iban_span(masked, m)
        if found:
            spans.append(PiiSpan(found[0], found[1], "iban"))
    masked = _blank(text, spans)
    for m in _CARD_RX.finditer(masked):
        if _is_card(masked, m.start(), m.group(0)):
            spans.append(PiiSpan(m.start(), m.end(), "card"))
    masked = _blank(text, spans)
    for m in _PHONE_RX.finditer(masked):
        raw = m.group(0)
        if _is_phone(masked, m.start(), raw, regions, budget):
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


#: At most this many masking passes per text (each pass is linear; a text needing more is hostile).
_MAX_PASSES = 8


def _redact(text: str, counts: dict | None = None, regions: tuple[str, ...] = PHONE_REGIONS) -> str:
    """Mask until nothing is found (a placeholder can un-glue a neighbour), at most :data:`_MAX_PASSES`
    times; the passes share one phone look-up budget."""
    budget = [PHONE_LOOKUPS_PER_TEXT]
    for _ in range(_MAX_PASSES):
        spans = _find(text, regions, budget)
        if not spans:
            break
        if counts is not None:
            for s in spans:
                counts[s.kind] += 1
        text = _apply(text, spans)
    return text


def redact_text(text: str, *, regions: Sequence[str] = PHONE_REGIONS) -> str:
    """``text`` with every span of :func:`find_pii` replaced by its placeholder.

    Idempotent: masking repeats until nothing is found, so redacting twice changes nothing
    more. Non-text input (None, NA, NaN) is returned unchanged.

    Examples
    --------
    >>> redact_text("Mail jane.doe@example.co.uk, card 4111.1111.1111.1111, call 800-222-2377.")
    'Mail <EMAIL>, card <CARD>, call <PHONE>.'
    >>> redact_text("@AmazonHelp Order 111-5014070-4118645, IBAN DE89-3704-0044-0532-0130-00")
    '@AmazonHelp Order 111-5014070-4118645, IBAN <IBAN>'
    >>> redact_text("meu celular é (11) 91234-5678, версия 10.0.19045.3803")
    'meu celular é <PHONE>, версия 10.0.19045.3803'
    """
    if not isinstance(text, str):
        return text
    return _redact(text, regions=tuple(regions))


def _candidates(distinct: pd.Series) -> np.ndarray:
    """Vectorised pre-filter: positions of the texts that can hold PII (an ``@``, or 7+ digits and separators)."""
    return np.flatnonzero((distinct.str.contains(_PREFILTER_AT, regex=False, na=False)
                           | distinct.str.contains(_PREFILTER_DIGITS, regex=True, na=False)).to_numpy(dtype=bool))


def redact_series(series: pd.Series, *, regions: Sequence[str] = PHONE_REGIONS) -> tuple[pd.Series, RedactionCounts]:
    """Redact every text of ``series``; returns ``(redacted, counts)``.

    For free-text fields (``text``, ``topic``, ``escalation_reason``); identifiers go through
    :func:`pseudonymise` or :func:`redact_ids`. The result has the input's index and the ``str``
    dtype (missing values stay missing); the input is not modified. Each distinct text is
    redacted once (counts are per message); texts are pre-selected with vectorised tests (a
    ``@``, or a run of 7+ digits and separators), so a million short messages take well under a
    second. An empty series gives an empty series and zero counts.

    Examples
    --------
    >>> out, counts = redact_series(pd.Series(["hi", "me@x.org", None, "call 0344 556 5650"]))
    >>> out.tolist(), counts.email_count, counts.phone_count, counts.message_count
    (['hi', '<EMAIL>', nan, 'call <PHONE>'], 1, 1, 2)
    """
    if not isinstance(series, pd.Series):
        raise TypeError(f"redact_series expects a pandas Series, got {type(series).__name__}")
    regions = tuple(regions)
    text = series.astype("str")
    if len(text) == 0:
        return text.copy(), RedactionCounts()
    # Work on the distinct texts (chat logs repeat greetings and bot templates): each is pre-filtered
    # and redacted once, and its counts are weighted by how many messages hold it.
    codes, uniques = pd.factorize(text)  # code -1 for a missing text
    distinct = pd.Series(uniques, dtype="str")
    positions = _candidates(distinct)
    if not len(positions):
        return text.copy(), RedactionCounts()
    counts = {"email": 0, "phone": 0, "card": 0, "iban": 0}
    messages = np.bincount(codes[codes >= 0], minlength=len(distinct))  # messages holding each text
    values = distinct.to_numpy(dtype=object, na_value=None)
    replaced: dict[int, str] = {}
    for pos in positions:
        value = values[pos]
        found = {"email": 0, "phone": 0, "card": 0, "iban": 0}
        redacted = _redact(value, found, regions)
        for kind, number in found.items():
            counts[kind] += number * int(messages[pos])
        if redacted != value:
            replaced[int(pos)] = redacted
    out = text.copy()
    changed_count = 0
    if replaced:
        rows, new = _expand(codes, len(distinct), replaced)
        out.iloc[rows] = new
        changed_count = len(rows)
    return out, RedactionCounts(email_count=counts["email"], phone_count=counts["phone"],
                                card_count=counts["card"], iban_count=counts["iban"],
                                message_count=changed_count)


def _expand(codes: np.ndarray, n_distinct: int, replaced: dict[int, str]) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose distinct text was replaced, and their new values."""
    slot = np.full(n_distinct + 1, -1)  # distinct text -> index into the new texts (-1: unchanged)
    slot[list(replaced)] = np.arange(len(replaced))
    which = slot[codes]  # code -1 (missing) reads the last slot, which is -1
    rows = np.flatnonzero(which >= 0)
    return rows, np.array(list(replaced.values()), dtype=object)[which[rows]]


# --------------------------------------------------------------------------- identifiers

_HASH_HEX = 16  # 64 bits: two of ten million distinct ids collide with probability ~3e-6


def _check_key(key: bytes) -> bytes:
    if not isinstance(key, (bytes, bytearray)):
        raise TypeError(f"key must be bytes, got {type(key).__name__}")
    if len(key) < 16:
        raise ValueError("key must hold at least 16 random bytes (the store keeps one per database)")
    return bytes(key)


def _keyed_hash(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:_HASH_HEX]


def _per_distinct(values: pd.Series, name: str, transform, *, prefilter: bool = False) -> pd.Series:
    """``transform`` applied once per distinct non-missing value of ``values`` (only to those the
    vectorised pre-filter selects when ``prefilter``); ``str`` dtype, the input's index."""
    if not isinstance(values, pd.Series):
        raise TypeError(f"{name} expects a pandas Series, got {type(values).__name__}")
    text = values.astype("str")
    if len(text) == 0:
        return text.copy()
    codes, uniques = pd.factorize(text)  # code -1 for a missing value
    distinct = pd.Series(uniques, dtype="str")
    values_ = distinct.to_numpy(dtype=object, na_value=None)
    replaced = {}
    for pos in (_candidates(distinct) if prefilter else range(len(values_))):
        new = transform(values_[pos])
        if new != values_[pos]:
            replaced[int(pos)] = new
    out = text.copy()
    if replaced:
        rows, changed = _expand(codes, len(distinct), replaced)
        out.iloc[rows] = changed
    return out


def pseudonymise(values: pd.Series, *, key: bytes, prefix: str = "u_") -> pd.Series:
    """Each identifier replaced by a keyed pseudonym: ``prefix`` + the first 16 hex digits of
    HMAC-SHA256(``key``, the id as UTF-8).

    For ``user_id`` (any value of it can be personal: a phone, an e-mail, a name, a customer
    number). The same id gives the same pseudonym under the same key, so repeat users and
    re-uploads still match; distinct ids stay distinct (64 bits: a collision among ten million
    ids has probability ~3e-6). Missing stays missing; a value that already is a pseudonym
    (``prefix`` + 16 lower-case hex digits) is kept, so applying it twice changes nothing more.
    Each distinct value is hashed once. Returns the ``str`` dtype with the input's index.

    ``key``: at least 16 random bytes. It lives in the store (one per database, created with the
    database and never exported): without it a pseudonym reveals nothing, with it anyone can test
    whether a guessed id (a phone number, an address) is in the data -- keep it as secret as the
    data. A new key breaks the link with everything stored under the old one.

    Examples
    --------
    >>> key = bytes(range(32))
    >>> out = pseudonymise(pd.Series(["+14155550132", "jane@example.com", None, "+14155550132"]), key=key)
    >>> out.tolist()
    ['u_7b1f20f4f6a02850', 'u_9487588974759d30', nan, 'u_7b1f20f4f6a02850']
    >>> pseudonymise(out, key=key).equals(out)
    True
    """
    key = _check_key(key)
    done = re.compile(re.escape(str(prefix)) + "[0-9a-f]{%d}" % _HASH_HEX)

    def one(value: str) -> str:
        return value if done.fullmatch(value) else f"{prefix}{_keyed_hash(key, value)}"

    return _per_distinct(values, "pseudonymise", one)


def _id_spans(value: str, regions: tuple[str, ...]) -> list[PiiSpan]:
    """PII inside one id: what :func:`find_pii` finds, plus bare runs of 10-15 digits that are a
    valid international number with the ``+`` left out (WhatsApp Cloud API ``wa_id`` ``14155550132``)."""
    spans = find_pii(value, regions=regions)
    taken = _blank(value, spans)
    for m in re.finditer(r"(?<![\d+])\d{10,15}(?!\d)", taken):
        try:
            number = phonenumbers.parse("+" + m.group(), None)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            spans.append(PiiSpan(m.start(), m.end(), "phone"))
    return sorted(spans, key=lambda s: s.start)


def redact_ids(values: pd.Series, *, key: bytes, regions: Sequence[str] = PHONE_REGIONS) -> pd.Series:
    """Each identifier with the personal data inside it replaced by a keyed token; the rest kept.

    For ``conversation_id`` (and any id whose structure is worth keeping): the e-mail addresses,
    phone numbers, cards and IBANs :func:`find_pii` finds in an id -- plus bare 10-15 digit runs
    that are a valid international number without the ``+`` (WhatsApp ``wa_id``) -- become
    ``<KIND:h>``, ``h`` being the first 16 hex digits of HMAC-SHA256(``key``, kind + the exact
    text found). So ``whatsapp:+14155550132`` becomes ``whatsapp:<PHONE:...>``: the channel prefix
    stays readable, the same id always gives the same result under the same key (re-uploads still
    de-duplicate), and two different ids never merge (the exact text is hashed, so even the same
    number written two ways stays two ids), up to a 64-bit hash collision. Ids without personal
    data are unchanged; missing stays missing; tokens already in an id are left alone, so
    applying it twice changes nothing more. Each distinct id is checked once, after a vectorised
    pre-filter (an ``@`` or 7+ digits). ``key``: as for :func:`pseudonymise` (kept in the store).

    Examples
    --------
    >>> key = bytes(range(32))
    >>> ids = pd.Series(["whatsapp:+14155550132", "web-8841", "jane@example.com", None, "14155550132"])
    >>> out = redact_ids(ids, key=key)
    >>> out.tolist()[:4]
    ['whatsapp:<PHONE:e5bdd7e9bcae00f6>', 'web-8841', '<EMAIL:2e980a0ef2bd908e>', nan]
    >>> out[4].startswith("<PHONE:"), out[4] != out[0].removeprefix("whatsapp:")
    (True, True)
    >>> redact_ids(out, key=key).equals(out)
    True
    """
    key = _check_key(key)
    regions = tuple(regions)

    def part(piece: str) -> str:
        spans = _id_spans(piece, regions)
        if not spans:
            return piece
        out, last = [], 0
        for s in spans:
            found = piece[s.start:s.end]
            out.append(piece[last:s.start])
            out.append(f"<{s.kind.upper()}:{_keyed_hash(key, s.kind + ':' + found)}>")
            last = s.end
        out.append(piece[last:])
        return "".join(out)

    def one_pass(value: str) -> str:
        pieces, last = [], 0
        for m in _ID_TOKEN_RX.finditer(value):  # tokens of an earlier pass stay as they are
            pieces.append(part(value[last:m.start()]))
            pieces.append(m.group())
            last = m.end()
        pieces.append(part(value[last:]))
        return "".join(pieces)

    def one(value: str) -> str:
        for _ in range(_MAX_PASSES):  # a token can un-glue a neighbour, as in redact_text
            new = one_pass(value)
            if new == value:
                break
            value = new
        return value

    return _per_distinct(values, "redact_ids", one, prefilter=True)
