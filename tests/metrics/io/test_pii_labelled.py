"""PII redaction (metrics.io.pii) against an independently labelled set: precision and recall per kind.

``tests/fixtures/pii/labelled.jsonl`` (see the README beside it) was written from the formats
of the world (phones of 30 countries, local and international; Visa/Mastercard/Amex/Discover/
JCB/Diners test numbers solid, spaced, dashed and dotted; IBANs of 20 countries compact, spaced
and dashed) and many hard negatives, before the patterns were tuned. A found span is a true
positive when its kind is the labelled kind and its text, stripped of surrounding whitespace,
is the labelled value. Run with ``-s`` to see the figures.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from metrics.io import pii

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "pii" / "labelled.jsonl"
ROWS = [json.loads(line) for line in FIXTURE.read_text("utf-8").splitlines() if line.strip()]
KINDS = ("email", "phone", "card", "iban")
MIN_SCORE = 0.95


def _luhn(number: str) -> bool:
    """Own Luhn check (independent of metrics.io.pii) for the fixture's self-check."""
    digits = [int(c) for c in number if c.isdigit()]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(reversed(digits)))
    return len(digits) > 1 and total % 10 == 0


def _mod97(iban: str) -> bool:
    """Own ISO 13616 check (independent of metrics.io.pii) for the fixture's self-check."""
    compact = re.sub(r"[\s\-]", "", iban).upper()
    return int("".join(str(int(c, 36)) for c in compact[4:] + compact[:4])) % 97 == 1


def score(rows) -> tuple[Counter, Counter, Counter, list]:
    """True positives, false positives and false negatives per kind, and the mistakes."""
    tp, fp, fn, mistakes = Counter(), Counter(), Counter(), []
    for row in rows:
        expected = Counter((s["kind"], s["value"].strip()) for s in row["spans"])
        found = Counter((s.kind, row["text"][s.start:s.end].strip()) for s in pii.find_pii(row["text"]))
        hit = expected & found
        for (kind, _), n in hit.items():
            tp[kind] += n
        for (kind, value), n in (found - hit).items():
            fp[kind] += n
            mistakes.append(("fp", kind, value, row["text"]))
        for (kind, value), n in (expected - hit).items():
            fn[kind] += n
            mistakes.append(("fn", kind, value, row["text"]))
    return tp, fp, fn, mistakes


def test_the_labelled_set_is_large_varied_and_self_consistent():
    assert len(ROWS) >= 200
    assert len({r["text"] for r in ROWS}) == len(ROWS)
    kinds = Counter(s["kind"] for r in ROWS for s in r["spans"])
    assert kinds["phone"] >= 60 and kinds["email"] >= 30 and kinds["card"] >= 20 and kinds["iban"] >= 20, kinds
    assert sum(1 for r in ROWS if not r["spans"]) >= 80  # hard negatives
    notes = [r["note"].split() for r in ROWS if r["note"].startswith("phone ")]
    countries = {words[1] for words in notes if words[1].isupper()}
    assert len(countries) >= 15, countries
    assert len({s["value"][:2].upper() for r in ROWS for s in r["spans"] if s["kind"] == "iban"}) >= 8
    for r in ROWS:
        for s in r["spans"]:
            assert s["kind"] in KINDS and s["value"] in r["text"], r
            if s["kind"] == "card":
                assert _luhn(s["value"]), r
            if s["kind"] == "iban":
                assert _mod97(s["value"]), r


def test_precision_and_recall_per_kind():
    tp, fp, fn, mistakes = score(ROWS)
    lines, failing = [], []
    for kind in KINDS:
        precision = tp[kind] / (tp[kind] + fp[kind]) if tp[kind] + fp[kind] else 1.0
        recall = tp[kind] / (tp[kind] + fn[kind]) if tp[kind] + fn[kind] else 1.0
        lines.append(f"{kind:>5}: precision {precision:.3f}  recall {recall:.3f}  "
                     f"(tp {tp[kind]}, fp {fp[kind]}, fn {fn[kind]})")
        if precision < MIN_SCORE or recall < MIN_SCORE:
            failing.append(kind)
    print(f"\nPII on {FIXTURE.relative_to(FIXTURE.parents[2])} ({len(ROWS)} messages):\n  " + "\n  ".join(lines))
    for m in mistakes:
        print("  ", *m)
    assert not failing, "\n".join(lines)


@pytest.mark.parametrize("row", [r for r in ROWS if not r["spans"]], ids=lambda r: r["note"])
def test_negatives_stay_as_they_are(row):
    """Every labelled negative survives redaction unchanged (reported one by one)."""
    assert pii.redact_text(row["text"]) == row["text"]


def test_series_agrees_with_text_on_the_labelled_set():
    texts = pd.Series([r["text"] for r in ROWS], dtype="str")
    out, counts = pii.redact_series(texts)
    assert out.tolist() == [pii.redact_text(t) for t in texts]
    found = Counter(s.kind for t in texts for s in pii.find_pii(t))
    assert (counts.email_count, counts.phone_count, counts.card_count, counts.iban_count) == (
        found["email"], found["phone"], found["card"], found["iban"])
