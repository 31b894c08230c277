"""PII redaction (metrics.io.pii): labelled precision/recall, real twcs text, properties, funnel placeholders."""

from __future__ import annotations

import json
import re
from collections import Counter

import hypothesis.strategies as st
import pandas as pd
import pytest
from hypothesis import given, settings

from conftest import FIXTURES, messages_frame, shared_path
from metrics import funnel
from metrics.io import pii

LABELLED = [json.loads(line) for line in (FIXTURES / "pii_labelled.jsonl").read_text("utf-8").splitlines() if line]
KINDS = ("email", "phone", "card", "iban")


def _scores(rows):
    """Entity-level counts per kind: a prediction is right when its kind and exact text match a label."""
    tp, fp, fn = Counter(), Counter(), Counter()
    for r in rows:
        expected = Counter((p["kind"], p["value"]) for p in r["pii"])
        found = Counter((s.kind, r["text"][s.start:s.end]) for s in pii.find_pii(r["text"]))
        hit = expected & found
        for (kind, _), n in hit.items():
            tp[kind] += n
        for (kind, _), n in (found - hit).items():
            fp[kind] += n
        for (kind, _), n in (expected - hit).items():
            fn[kind] += n
    return tp, fp, fn


# --------------------------------------------------------------------------- the labelled fixture

def test_fixture_is_large_and_consistent():
    assert len(LABELLED) >= 100
    kinds = Counter(p["kind"] for r in LABELLED for p in r["pii"])
    assert all(kinds[k] >= 8 for k in KINDS), kinds  # every kind is well represented
    negatives = [r for r in LABELLED if not r["pii"]]
    assert len(negatives) >= 40  # hard negatives: order numbers, handles, dates, Luhn-invalid cards ...
    for r in LABELLED:
        # the label is self-consistent: replacing each labelled value by its placeholder gives `expected`
        text = r["text"]
        for p in r["pii"]:
            text = text.replace(p["value"], pii.PLACEHOLDERS[p["kind"]], 1)
        assert text == r["expected"], r["id"]


def test_precision_and_recall_on_the_labelled_fixture():
    tp, fp, fn = _scores(LABELLED)
    lines = []
    for kind in KINDS + ("all",):
        t = sum(tp.values()) if kind == "all" else tp[kind]
        f_p = sum(fp.values()) if kind == "all" else fp[kind]
        f_n = sum(fn.values()) if kind == "all" else fn[kind]
        precision = t / (t + f_p) if t + f_p else float("nan")
        recall = t / (t + f_n) if t + f_n else float("nan")
        lines.append(f"{kind:>5}: precision {precision:.3f} recall {recall:.3f} (tp {t}, fp {f_p}, fn {f_n})")
        if kind == "all":
            overall = (precision, recall)
    print("\nPII redaction on tests/fixtures/pii_labelled.jsonl (%d messages):\n  " % len(LABELLED)
          + "\n  ".join(lines))
    assert overall[0] >= 0.95 and overall[1] >= 0.95, lines
    for kind in KINDS:
        assert tp[kind] / (tp[kind] + fp[kind] + fn[kind]) >= 0.9, lines  # no kind is carried by the others


def test_exact_redacted_text_for_nearly_every_labelled_message():
    wrong = [(r["id"], r["text"], pii.redact_text(r["text"]), r["expected"])
             for r in LABELLED if pii.redact_text(r["text"]) != r["expected"]]
    print(f"\nexact redacted text: {len(LABELLED) - len(wrong)}/{len(LABELLED)}")
    assert len(wrong) <= len(LABELLED) * 0.05, wrong


def test_series_matches_text_and_counts_every_kind():
    series = pd.Series([r["text"] for r in LABELLED] + [None], index=range(10, 10 + len(LABELLED) + 1), dtype="str")
    before = series.copy()
    out, counts = pii.redact_series(series)
    pd.testing.assert_series_equal(series, before)  # input untouched
    assert out.index.equals(series.index) and str(out.dtype) == "str"
    assert out.iloc[:-1].tolist() == [pii.redact_text(r["text"]) for r in LABELLED]
    assert pd.isna(out.iloc[-1])
    found = Counter(s.kind for r in LABELLED for s in pii.find_pii(r["text"]))
    assert counts.as_dict() == {"email_count": found["email"], "phone_count": found["phone"],
                                "card_count": found["card"], "iban_count": found["iban"],
                                "message_count": sum(1 for r in LABELLED if pii.find_pii(r["text"]))}
    assert counts.total_count == sum(found.values())


def test_empty_series_and_wrong_input():
    out, counts = pii.redact_series(pd.Series([], dtype="str"))
    assert len(out) == 0 and counts == pii.RedactionCounts() and counts.total_count == 0
    with pytest.raises(TypeError, match="list"):
        pii.redact_series(["a@b.com"])
    assert pii.redact_text(None) is None
    assert pii.redact_text("") == ""


# --------------------------------------------------------------------------- checks, golden values

@pytest.mark.parametrize("number,valid", [
    ("4111111111111111", True), ("4111111111111112", False),   # the classic Visa test number, last digit off by one
    ("378282246310005", True), ("79927398713", True),          # Amex test number; the Luhn article's example
    ("79927398710", False), ("0", False), ("", False),
])
def test_luhn(number, valid):
    assert pii.luhn_valid(number) is valid


@pytest.mark.parametrize("iban,valid", [
    ("DE89 3704 0044 0532 0130 00", True),   # ISO 13616 example: mod 97 of 370400440532013000131489 is 1
    ("DE89 3704 0044 0532 0130 01", False),  # one digit changed
    ("GB29NWBK60161331926819", True), ("gb29 nwbk 6016 1331 9268 19", True),
    ("DE89 3704 0044 0532 0130", False),     # Germany needs 22 characters, this has 20
    ("XX00 1234", False),
])
def test_iban(iban, valid):
    assert pii.iban_valid(iban) is valid


def test_an_iban_followed_by_a_capitalised_word_keeps_the_word():
    assert pii.redact_text("to GB82 WEST 1234 5698 7654 32 THEN close") == "to <IBAN> THEN close"


# --------------------------------------------------------------------------- properties

_fragment = st.one_of(
    st.sampled_from(["hello", "order", "#", "call", "ref", " ", "\n", ", ", "(", ")", "@sprintcare", "@115712",
                     "jane.doe@example.com", "+44 20 7946 0958", "555-123-4567", "4111 1111 1111 1111",
                     "DE89 3704 0044 0532 0130 00", "111-5014070-4118645", "2024-01-15", "<EMAIL>", "<PHONE>"]),
    st.text(alphabet="0123456789 .-()+@abcXYZ<>", max_size=20),
)
_texts = st.lists(_fragment, max_size=12).map("".join)


@settings(max_examples=200, deadline=None)
@given(_texts)
def test_redaction_is_idempotent_and_leaves_no_funnel_visible_address(text):
    once = pii.redact_text(text)
    assert pii.redact_text(once) == once
    # every address the funnel's own pattern would find is gone
    assert re.search(funnel.EMAIL_PATTERN, once) is None


_unicode = st.characters(exclude_categories=("Cs",))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(exclude_categories=("Cs", "Nd"), exclude_characters="@"),
                        max_size=30), max_size=20))
def test_rows_without_at_sign_or_digits_are_never_changed(texts):
    series = pd.Series(texts, dtype="str")
    out, counts = pii.redact_series(series)
    assert out.tolist() == texts and counts.total_count == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_texts, st.text(alphabet=_unicode, max_size=40)), max_size=20))
def test_the_vectorised_prefilter_never_skips_a_row_redact_text_would_change(texts):
    out, _ = pii.redact_series(pd.Series(texts, dtype="str"))
    assert out.tolist() == [pii.redact_text(t) for t in texts]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 5), max_size=30), st.lists(st.one_of(st.none(), _texts), min_size=6, max_size=6))
def test_repeated_texts_are_redacted_once_and_counted_per_message(picks, pool):
    """redact_series works on distinct texts; reference: each message redacted on its own, counts summed."""
    texts = [pool[i] for i in picks]
    out, counts = pii.redact_series(pd.Series(texts, dtype="str"))
    expected = pd.Series([None if t is None else pii.redact_text(t) for t in texts], dtype="str")
    pd.testing.assert_series_equal(out, expected)
    alone = [pii.redact_series(pd.Series([t], dtype="str"))[1] for t in texts]
    assert counts.as_dict() == {k: sum(c.as_dict()[k] for c in alone) for k in counts.as_dict()}


@settings(max_examples=100, deadline=None)
@given(st.from_regex(r"[a-z][a-z0-9._+\-]{0,10}@[a-z][a-z0-9\-]{0,8}(\.[a-z]{2,6}){1,2}", fullmatch=True),
       st.sampled_from(["", "x ", "mail: ", "(", "<"]), st.sampled_from(["", " y", ".", ")", ">", "!"]))
def test_every_address_the_funnel_sees_is_masked(address, before, after):
    text = before + address + after
    assert re.search(funnel.EMAIL_PATTERN, text)
    assert pii.redact_text(text) == before + "<EMAIL>" + after


# --------------------------------------------------------------------------- funnel rules and placeholders

def _lead_messages(text: str) -> pd.DataFrame:
    return messages_frame([
        {"conversation_id": "c1", "speaker": "bot", "text": "Hi! What are you looking for?", "event": "inquiry",
         "timestamp": "2024-01-01T10:00:00Z"},
        {"conversation_id": "c1", "speaker": "user", "text": "A demo for 20 seats", "event": "qualification",
         "timestamp": "2024-01-01T10:00:10Z"},
        {"conversation_id": "c1", "speaker": "user", "text": text, "timestamp": "2024-01-01T10:00:20Z"},
    ])


def test_funnel_rules_can_match_the_placeholders():
    raw = _lead_messages("sure, it's jane.doe@example.com or +44 20 7946 0958")
    redacted = raw.assign(text=pii.redact_series(raw["text"])[0])
    assert redacted["text"].iloc[2] == "sure, it's <EMAIL> or <PHONE>"
    by_placeholder = [funnel.Stage("inquiry", "event:inquiry"), funnel.Stage("email provided", "user~<EMAIL>"),
                      funnel.Stage("phone provided", "user~<PHONE>")]
    assert funnel.reached_stage(redacted, by_placeholder)["highest_stage"].tolist() == [2]
    both = [funnel.Stage("inquiry", "event:inquiry"),
            funnel.Stage("email provided", funnel.Rule("user", pattern=pii.EMAIL_RULE_PATTERN)),
            funnel.Stage("phone provided", funnel.Rule("user", pattern=pii.PHONE_RULE_PATTERN))]
    assert funnel.reached_stage(redacted, both)["highest_stage"].tolist() == [2]  # redacted text
    assert funnel.reached_stage(raw, both)["highest_stage"].tolist() == [2]       # and raw text


def test_default_lead_funnel_reaches_the_contact_stages_on_redacted_text():
    raw = _lead_messages("sure, it's jane.doe@example.com or +44 20 7946 0958")
    redacted = raw.assign(text=pii.redact_series(raw["text"])[0])
    assert funnel.reached_stage(redacted, funnel.DEFAULT_LEAD_FUNNEL)["highest_stage"].tolist() == [3]


# --------------------------------------------------------------------------- real text (twcs sample)

#: Identifiers in the twcs sample that must survive (order, reference, case and tracking numbers, zip codes).
TWCS_KEEP = ["Order 111-5014070-4118645", "Order# 3632693-6196346", "Reference number is 16934380",
             "case number 494610", "PP-006-234-348-863", "TBA566517950000", "CAS-19708536-CB92N2 CRM:0326600",
             "Zip:30093", "Here its 615787351"]
#: Phone numbers written in the twcs sample (found by reading every message with a 7+ digit run).
TWCS_PHONES = ["800-222-2377", "0344 556 5650", "850.266.3576", "08070635658", "1.877.350.0038", "800-325-8224",
               "7703743799", "9958520468", "0344 493 0787", "00447900248601", "888-780-3962", "8106028994",
               "1-800-869-3557", "1-800-956-4442", "1-866-216-1072", "800-892-4357", "+380671277946",
               "09020564975", "+1(818)930-5703", "(706)614-7640", "+91-90002-89198", "+49 1708733216",
               "0120-999-373"]  # the last: Amazon Japan's toll-free number, in Japanese text (フリーダイヤル：0120-...)


@pytest.fixture(scope="module")
def twcs_text() -> pd.Series:
    frame = pd.read_csv(shared_path("twcs_sample", "twcs.csv"), dtype="str", keep_default_na=False)
    return frame["text"].astype("str")


def test_real_twcs_text_keeps_handles_and_order_numbers(twcs_text):
    out, counts = pii.redact_series(twcs_text)
    handles = re.compile(r"@\w+")
    # every Twitter handle (7,000+ of them, most numeric like @115712) survives, in place
    assert Counter(h for t in twcs_text for h in handles.findall(t)) == Counter(
        h for t in out for h in handles.findall(t))
    assert sum(len(handles.findall(t)) for t in twcs_text) > 5000
    joined_in, joined_out = "\n".join(twcs_text), "\n".join(out)
    for keep in TWCS_KEEP:
        assert keep in joined_in, keep  # the sample really holds it
        assert keep in joined_out, keep
    for phone in TWCS_PHONES:
        assert phone in joined_in, phone
        assert phone not in joined_out, phone
    # nothing but the phones changed: no e-mail address, card or IBAN in this sample
    assert counts.email_count == counts.card_count == counts.iban_count == 0
    assert len(TWCS_PHONES) <= counts.phone_count <= len(TWCS_PHONES) + 4
    changed = [(a, b) for a, b in zip(twcs_text, out) if a != b]
    assert len(changed) == counts.message_count
    assert all(re.sub(r"<PHONE>", "", b) != b for _, b in changed)


# --------------------------------------------------------------------------- formats added with phonenumbers

@pytest.mark.parametrize("text,expected", [
    ("card 4111.1111.1111.1111 exp 09/27", "card <CARD> exp 09/27"),            # dotted groups
    ("amex 3787.344936.71000", "amex <CARD>"),
    ("IMEI 490154203237518", "IMEI 490154203237518"),                          # Luhn-valid, but a device number
    ("IBAN DE89-3704-0044-0532-0130-00.", "IBAN <IBAN>."),                      # dashes between groups
    ("part XY12 ABCD 1234 5678 9", "part XY12 ABCD 1234 5678 9"),               # no such country
    ("appelez le 01.23.45.67.89", "appelez le <PHONE>"),                        # French dotted pairs
    ("позвоните 8 (495) 123-45-67", "позвоните <PHONE>"),                       # Russian trunk 8
    ("meu celular é (11) 91234-5678", "meu celular é <PHONE>"),
    ("手机号13800138000", "手机号<PHONE>"),                                       # Chinese text touches the number
    ("mi celular 55 1234 5678", "mi celular <PHONE>"),
    ("Tel. 089/1234567", "Tel. <PHONE>"),
    ("Zip:30093; Phone#: 7703743799", "Zip:30093; Phone#: <PHONE>"),            # "Phone#" is a phone word
    ("numéro de commande 100234567", "numéro de commande 100234567"),           # the nearer word decides
    ("case ID is PP-006-234-348-863", "case ID is PP-006-234-348-863"),         # glued to an identifier
    ("from 2024/03/15 to 15-03-2024", "from 2024/03/15 to 15-03-2024"),         # dates
    ("born 2015 2017 2019", "born 2015 2017 2019"), ("SSN 123-45-6789", "SSN 123-45-6789"),
    ("Windows 10.0.19045.3803", "Windows 10.0.19045.3803"), ("it is 1234 5678", "it is 1234 5678"),
])
def test_world_formats(text, expected):
    assert pii.redact_text(text) == expected


def test_national_formats_follow_the_regions():
    assert pii.redact_text("55 1234 5678", regions=("MX",)) == "<PHONE>"  # Mexico City, grouped as Mexico does
    assert pii.redact_text("55 1234 5678", regions=("GB",)) == "55 1234 5678"
    assert pii.redact_text("+52 55 1234 5678", regions=()) == "<PHONE>"  # + needs no region
    assert len(pii.PHONE_REGIONS) >= 15 and {"US", "GB", "FR", "DE", "IN", "BR", "CN", "RU", "MX"} <= set(
        pii.PHONE_REGIONS)


def test_a_long_local_part_is_masked_by_its_last_64_characters():
    text = "x" * 100 + "@example.com"
    assert pii.redact_text(text) == "x" * 36 + "<EMAIL>"
    assert pii.redact_text("'lead@company.travel'") == "'<EMAIL>'"


# --------------------------------------------------------------------------- identifiers

KEY = bytes(range(32))


def test_pseudonymise_is_keyed_stable_and_keeps_missing():
    ids = pd.Series(["u1", "jane@example.com", None, "u1", "+14155550132"], index=[5, 6, 7, 8, 9])
    out = pii.pseudonymise(ids, key=KEY)
    assert out.index.equals(ids.index) and str(out.dtype) == "str" and pd.isna(out[7])
    assert out[5] == out[8] and len({out[5], out[6], out[9]}) == 3
    assert all(re.fullmatch(r"u_[0-9a-f]{16}", v) for v in out.dropna())
    assert pii.pseudonymise(ids, key=KEY).equals(out)                            # stable for the same key
    assert pii.pseudonymise(ids, key=bytes(32))[5] != out[5]                      # another key, other pseudonyms
    assert pii.pseudonymise(out, key=KEY).equals(out)                             # applying twice changes nothing
    assert pii.pseudonymise(ids, key=KEY, prefix="c_")[5].startswith("c_")
    assert len(pii.pseudonymise(pd.Series([], dtype="str"), key=KEY)) == 0


@pytest.mark.parametrize("call", [lambda: pii.pseudonymise(["u1"], key=KEY),
                                  lambda: pii.redact_ids(["u1"], key=KEY)])
def test_id_functions_want_a_series(call):
    with pytest.raises(TypeError, match="Series"):
        call()


@pytest.mark.parametrize("key,error", [("secret", TypeError), (b"short", ValueError), (None, TypeError)])
def test_id_functions_want_a_key_of_random_bytes(key, error):
    with pytest.raises(error):
        pii.pseudonymise(pd.Series(["u1"]), key=key)
    with pytest.raises(error):
        pii.redact_ids(pd.Series(["u1"]), key=key)


def test_redact_ids_masks_the_pii_inside_and_keeps_the_rest():
    ids = pd.Series(["whatsapp:+14155550132", "whatsapp:+14155550133", "whatsapp:+1 415 555 0132", "web-8841",
                     "email:jane@example.com", "14155550132", "c-1001", None, "whatsapp:+14155550132"])
    out = pii.redact_ids(ids, key=KEY)
    assert re.fullmatch(r"whatsapp:<PHONE:[0-9a-f]{16}>", out[0]) and out[0] == out[8]  # stable
    assert len(set(out[:3])) == 3  # different numbers, or the same number written otherwise: still different ids
    assert out[3] == "web-8841" and out[6] == "c-1001" and pd.isna(out[7])
    assert re.fullmatch(r"email:<EMAIL:[0-9a-f]{16}>", out[4])
    assert re.fullmatch(r"<PHONE:[0-9a-f]{16}>", out[5])  # a WhatsApp wa_id: the number without its +
    assert pii.redact_ids(out, key=KEY).equals(out)
    assert pii.redact_ids(ids, key=bytes(32))[0] != out[0]


_id_fragment = st.sampled_from(["whatsapp:", "sms:", "+14155550132", "+447700900123", "14155550132", "jane@example.com",
                                "j.doe@example.org", "-", "_", "c", "1001", "0612345678", "4111111111111111", " ", "<",
                                ">", "PHONE:", "2024"])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(_id_fragment, max_size=5).map("".join), max_size=25))
def test_redact_ids_never_merges_two_ids(ids):
    out = pii.redact_ids(pd.Series(ids, dtype="str"), key=KEY)
    assert len(set(out)) == len(set(ids))  # one-to-one on the distinct ids
    assert pii.redact_ids(out, key=KEY).equals(out)
