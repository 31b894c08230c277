"""Threaded social-support adapter (metrics.io.adapters.twcs) on the real 5,000-tweet twcs sample."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FUZZ_EXAMPLES, ROOT, only_chatlens_errors, shared_path
from metrics.io.adapters import read
from metrics.io.adapters.twcs import TWITTER_TIME_FORMAT
from metrics.errors import ValidationError
from metrics.io.loaders import load_bytes, load_path

LABEL = "Customer support on Twitter (twcs CSV)"
HEADER = "tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id\n"


def _path():
    return shared_path("twcs_sample", "twcs.csv")


def _independent_threads(path):
    """Threads computed with pandas alone: the file's one broken record splits into two CSV rows, the second
    (its text's tail) has no author_id and is dropped; the rest are the 5,000 tweets."""
    raw = pd.read_csv(path, dtype=str)
    tweets = raw[raw["author_id"].notna()]
    parent = {t: (str(int(float(p))) if isinstance(p, str) else None)
              for t, p in zip(tweets["tweet_id"], tweets["in_response_to_tweet_id"])}

    def root(tweet):
        while parent[tweet] is not None and parent[tweet] in parent:
            tweet = parent[tweet]
        return tweet

    roots = tweets["tweet_id"].map(root)
    return raw, tweets.assign(root=roots.to_numpy()), parent


@pytest.mark.shared_data
def test_sample_golden_counts_and_thread_rebuild():
    path = _path()
    raw, tweets, parent = _independent_threads(path)
    assert len(raw) == 5001 and len(tweets) == 5000
    roots = set(tweets["root"])
    outside = sum(1 for r in roots if parent[r] is not None)
    assert (len(roots), outside) == (1312, 6)
    # The 1,313 counts that stray tail row as a tweet of its own (a thread of one):
    assert len(roots) + int(raw["author_id"].isna().sum()) == 1313

    table, platform = read(path.read_bytes(), path.name)
    assert platform == "twcs" and len(table.frame) == 5000
    frame = table.frame
    assert frame["conversation_id"].nunique() == 1312
    assert dict(zip(frame["message_id"], frame["conversation_id"])) == dict(zip(tweets["tweet_id"], tweets["root"]))
    assert (frame["speaker"] == "user").sum() == 2778 == int((tweets["inbound"] == "True").sum())
    assert (frame["speaker"] == "agent").sum() == 2222
    assert any("5,000 tweet(s) rebuilt into 1,312 thread(s)" in n and "6 thread(s) start with a reply to a tweet "
               "outside the file" in n for n in table.notices)
    # the brand (first non-inbound author of the thread) is channel and segment
    stamps = pd.to_datetime(tweets["created_at"], format=TWITTER_TIME_FORMAT, utc=True)
    brands = tweets.assign(ts=stamps)[tweets["inbound"] == "False"].sort_values("ts").groupby("root")["author_id"].first()
    by_conv = frame.groupby("conversation_id")[["channel", "segment"]].first()
    assert by_conv["channel"].to_dict() == brands.to_dict() == by_conv["segment"].to_dict()
    assert brands.value_counts().head(3).to_dict() == {"ChipotleTweets": 172, "AmazonHelp": 103, "AppleSupport": 85}
    users = frame[frame["speaker"] == "user"]
    assert users["user_id"].notna().all() and frame.loc[frame["speaker"] == "agent", "user_id"].isna().all()


@pytest.mark.shared_data
def test_the_malformed_record_is_joined_back_with_a_notice_not_refused():
    path = _path()
    table, _ = read(path.read_bytes(), path.name)
    assert table.problems == []
    notice = next(n for n in table.notices if "joined back" in n)
    assert "row 2485 (tweet 3399) was broken by an unquoted line break" in notice
    assert "I just love the start of email" in notice  # the joined text is shown for checking
    # loaded by default: every tweet, tweet 3399 with its text joined and its thread kept (its reply 3398 too)
    result = load_path(path)
    assert result.skipped_rows == 0 and len(result.frame) == 5000 and result.conversations == 1312
    by_id = result.frame.set_index("message_id")
    assert by_id.loc["3399", "text"].startswith("@AskPayPal \n\nI just love the start of email")
    assert result.frame.loc[result.frame["message_id"] == "3398", "conversation_id"].tolist() == ["3399"]
    assert by_id.loc["1", "timestamp"] == pd.Timestamp("2017-10-31T22:10:47Z")


@pytest.mark.shared_data
def test_a_truncated_file_names_the_cut_record():
    raw = _path().read_bytes()
    cut = raw[: raw.rindex(b"\n", 0, len(raw) - 1) + 40]  # the last record stops inside its text
    with pytest.raises(ValidationError) as info:
        load_bytes(cut, "twcs.csv")
    # records are CSV records after the header (blank lines skipped), so the broken tweet's tail is record 2486
    # and the 5,000th tweet is record 5001, as in the generic reader's numbering
    problems = {p.row: p.message for p in info.value.problems}
    assert problems[5001] == f"{LABEL}: record 5001 (tweet 7630) has 5 fields but the header has 8"


def test_threads_follow_replies_to_the_topmost_ancestor():
    data = (HEADER
            + '10,alice,True,Mon Jan 01 10:00:00 +0000 2024,"@acme help",11,\n'
            + '11,acme,False,Mon Jan 01 10:05:00 +0000 2024,"@alice sure, DM us",12,10.0\n'
            + '12,alice,True,Mon Jan 01 10:06:00 +0000 2024,"@acme done",,11.0\n'
            + '20,bob,True,Mon Jan 01 11:00:00 +0000 2024,"@acme reply to an old tweet",,5\n').encode()
    result = load_bytes(data, "tweets.csv")
    frame = result.frame
    assert frame[["conversation_id", "message_id", "speaker"]].values.tolist() == [
        ["10", "10", "user"], ["10", "11", "agent"], ["10", "12", "user"], ["20", "20", "user"]]
    assert frame["channel"].tolist()[:3] == ["acme"] * 3 and pd.isna(frame["channel"].iloc[3])
    assert any("1 thread(s) start with a reply to a tweet outside the file" in n for n in result.notices)
    assert any("1 thread(s) have no brand reply" in n for n in result.notices)


def test_reply_cycles_and_duplicates_do_not_hang_or_pass_silently():
    data = (HEADER + '1,a,True,Mon Jan 01 10:00:00 +0000 2024,x,,2\n'
            + '2,b,False,Mon Jan 01 10:01:00 +0000 2024,y,,1\n'
            + '2,b,False,Mon Jan 01 10:02:00 +0000 2024,dup,,1\n').encode()
    table, _ = read(data, "t.csv")
    assert table.frame["conversation_id"].nunique() == 1
    assert [p.message for p in table.problems] == [f"{LABEL}: record 3 repeats tweet 2"]


def test_bad_inbound_values_are_reported():
    data = (HEADER + '1,a,maybe,Mon Jan 01 10:00:00 +0000 2024,x,,\n2,a,True,Mon Jan 01 10:00:00 +0000 2024,y,,\n')
    with pytest.raises(ValidationError, match="inbound is not True/False"):
        load_bytes(data.encode(), "t.csv")


@pytest.mark.shared_data
def test_cli_summary_names_the_platform_and_the_repaired_record():
    path = _path()
    out = subprocess.run([sys.executable, "-m", "metrics", "summary", str(path), "--format", "json"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    dataset = json.loads(out.stdout)["dataset"]
    assert dataset["format"] == "twcs"
    assert (dataset["conversations"], dataset["messages"], dataset["skipped_rows"]) == (1312, 5000, 0)
    assert any("row 2485 (tweet 3399)" in w and "joined back" in w for w in dataset["warnings"])


# --------------------------------------------------------------------------- fuzz

_CELLS = st.one_of(st.text(max_size=12), st.sampled_from(["True", "False", "", "3.0", "1", "2",
                                                           "Tue Oct 31 22:10:47 +0000 2017", "a\nb", "\r\r"]))


@settings(max_examples=FUZZ_EXAMPLES)
@given(st.lists(st.lists(_CELLS, max_size=10), max_size=8), st.booleans())
def test_fuzz_arbitrary_rows_raise_only_chatlens_errors(rows, quoted):
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE, escapechar="\\")
    for row in rows:
        try:
            writer.writerow(row)
        except csv.Error:
            continue
    raw = (HEADER + buffer.getvalue()).encode("utf-8", "surrogatepass")
    only_chatlens_errors(lambda: load_bytes(raw, "t.csv", platform="twcs", on_error="skip"))


@settings(max_examples=FUZZ_EXAMPLES)
@given(st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
                    lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.text(max_size=6), c, max_size=4)),
                    max_leaves=20))
def test_fuzz_arbitrary_json_raises_only_chatlens_errors(payload):
    raw = json.dumps(payload).encode("utf-8", "surrogatepass")
    only_chatlens_errors(lambda: read(raw, "t.json", platform="twcs"))
