"""Sentiment scoring: VADER's known values, the blind-spot fixes, exact equality with bare VADER
on untouched real texts, the store-backed cache and the process pool."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from conftest import messages_frame, shared_path
from metrics.sentiment import cache as sentiment_cache
from metrics.errors import ConfigError, InsufficientDataError
from metrics.sentiment import (
    ANALYZER_VERSION, EMOJI_VALENCE, VARIATION_SELECTOR, Cutoffs, MemoryCache, SentimentScorer, add_sentiment,
    PendingScores, analyzer_version, prefetch_scores, score_messages, sentiment_labels, text_hash, touched_by_fixes,
)

BARE = SentimentIntensityAnalyzer()


def bare(text: str) -> float:
    return BARE.polarity_scores(text)["compound"]


def normalize(total: float) -> float:
    """VADER's compound for a sum of valences: x / sqrt(x^2 + 15), rounded to 4 places."""
    return round(total / math.sqrt(total * total + 15), 4)


@pytest.fixture(scope="module")
def scorer():
    return SentimentScorer(processes=1)


# --------------------------------------------------------------------------- golden values

# The examples of VADER's README with the compound scores it publishes.
README_GOLDEN = [
    ("VADER is smart, handsome, and funny.", 0.8316),
    ("VADER is smart, handsome, and funny!", 0.8439),
    ("VADER is very smart, handsome, and funny.", 0.8545),
    ("VADER is VERY SMART, handsome, and FUNNY.", 0.9227),
    ("VADER is VERY SMART, handsome, and FUNNY!!!", 0.9342),
    ("VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!", 0.9469),
    ("VADER is not smart, handsome, nor funny.", -0.7424),
    ("The book was good.", 0.4404),
    ("At least it isn't a horrible book.", 0.431),
    ("The book was only kind of good.", 0.3832),
    ("The plot was good, but the characters are uncompelling and the dialog is not great.", -0.7042),
    ("Today SUX!", -0.5461),
    ("Today only kinda sux! But I'll get by, lol", 0.5249),
    ("Make sure you :) or :D today!", 0.8633),
    ("Catch utf-8 emoji such as 💘 and 💋 and 😁", 0.875),
    ("Not bad at all", 0.431),
    ("", 0.0),
    # field notes' quirks: "kindly" (+2.2) softens a demand, "no problem" reads positive
    ("Kindly stop disturbing me.", -0.3182),
    ("Stop disturbing me.", -0.6705),
    ("no problem", 0.3089),
]


@pytest.mark.parametrize("text,expected", README_GOLDEN)
def test_golden_texts_score_vader_published_values(scorer, text, expected):
    assert scorer.polarity(text) == expected
    assert bare(text) == expected


def test_golden_values_by_hand():
    # smart 1.7 + handsome 2.2 + funny 1.9 = 5.8 -> 5.8 / sqrt(5.8^2 + 15) = 0.8316
    assert normalize(1.7 + 2.2 + 1.9) == 0.8316
    # "good" 1.9 -> 1.9 / sqrt(3.61 + 15) = 0.4404
    assert normalize(1.9) == 0.4404
    # ❤ is described as "red heart"; "heart" is 3.2 -> 3.2 / sqrt(10.24 + 15) = 0.6369
    # (the field notes' +0.8555 for a bare ❤ does not hold on vaderSentiment 3.3.2)
    assert normalize(3.2) == 0.6369 == bare("❤")


# --------------------------------------------------------------------------- blind-spot fixes

def test_variation_selector_is_stripped(scorer):
    heart = "\u2764\ufe0f"
    assert bare(heart) == 0.0                       # the blind spot
    assert scorer.polarity(heart) == bare("\u2764") == 0.6369
    assert scorer.polarity(f"Thanks {heart} so much") == bare("Thanks \u2764 so much")
    assert touched_by_fixes(heart)


def test_variation_selector_only_texts_equal_bare_vader_on_the_stripped_text(scorer):
    texts = ["I\ufe0f love it", "great job \u2764\ufe0f\u2764\ufe0f", "\u263a\ufe0f ok", "meh \u2639\ufe0f"]
    for text in texts:
        assert scorer.polarity(text) == bare(text.replace(VARIATION_SELECTOR, ""))


@pytest.mark.parametrize("emoji", sorted(EMOJI_VALENCE))
def test_each_fixed_emoji_scores_its_valence(scorer, emoji):
    # alone, the emoji's token is the only valence: compound = normalize(valence)
    assert scorer.polarity(emoji) == normalize(EMOJI_VALENCE[emoji])
    assert touched_by_fixes(emoji)


@pytest.mark.parametrize("emoji", ["😡", "🤬", "😤", "👎", "💩", "😒", "🙄", "🖕", "🤮", "🤢", "😾", "👍"])
def test_fixed_emoji_were_blind_spots(emoji):
    assert bare(emoji) == 0.0


def test_broken_heart_no_longer_reads_positive(scorer):
    assert bare("💔") == 0.2732                    # "broken heart": heart +3.2 wins
    assert scorer.polarity("💔") == normalize(-2.7) == -0.5719


@pytest.mark.parametrize("emoji", ["😡", "😠", "🤬", "😤", "👎", "😞", "😢", "😭", "💩"])
def test_issue_negative_emoji_all_label_negative(scorer, emoji):
    assert scorer.polarity(emoji) <= -0.05


@pytest.mark.parametrize("emoji,expected", [("😠", -0.5106), ("😞", -0.4767), ("😢", -0.4767), ("😭", -0.4767)])
def test_emoji_vader_already_scores_are_left_untouched(scorer, emoji, expected):
    # "angry face" (angry -2.3) and "disappointed/crying face" (-2.1) already carry valence
    assert not touched_by_fixes(emoji)
    assert scorer.polarity(emoji) == bare(emoji) == expected


@pytest.mark.parametrize("emoji,word", [("😡", "furious"), ("😤", "frustration"), ("👎", "dislike"),
                                        ("😒", "annoyed"), ("💔", "heartbreak")])
@pytest.mark.parametrize("template", ["The support was {} today", "not {}", "I am {}!!!", "{}worst service ever",
                                      "good but {}"])
def test_emoji_token_follows_vader_rules_like_the_word_it_stands_for(scorer, emoji, word, template):
    # each emoji borrows one lexicon word's valence, so negation, "but", emphasis and glued words
    # treat it exactly like that word (a glued word is split off the emoji: "😡worst")
    glued = template.startswith("{}w")
    word_text = template.format(word + (" " if glued else ""))
    assert scorer.polarity(template.format(emoji)) == bare(word_text)


def test_fixes_can_be_switched_off():
    plain = SentimentScorer(emoji_valence={}, strip_variation_selector=False, processes=1)
    for text in ["😡", "\u2764\ufe0f", "💔 broken"]:
        assert plain.polarity(text) == bare(text)
    assert plain.version != ANALYZER_VERSION


# --------------------------------------------------------------------------- exact equality on real data

@pytest.mark.shared_data
def test_untouched_twcs_texts_equal_bare_vader_exactly():
    frame = pd.read_csv(shared_path("twcs_sample", "twcs.csv"))
    texts = frame["text"].dropna().astype(str).unique().tolist()
    untouched = [t for t in texts if not touched_by_fixes(t)]
    touched = [t for t in texts if touched_by_fixes(t)]
    assert len(untouched) > 4500 and len(touched) > 50      # 4,992 distinct texts, 116 touched
    scores = SentimentScorer(processes=1).score(untouched)
    expected = [bare(t) for t in untouched]
    mismatches = [(t, s, e) for t, s, e in zip(untouched, scores.tolist(), expected) if s != e]
    assert mismatches == []
    # and the fixes do change real tweets ("So frustrated with @ChipotleTweets 😡 ...")
    fixed = SentimentScorer(processes=1).score(touched)
    assert sum(f != bare(t) for f, t in zip(fixed.tolist(), touched)) > 10


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60))
def test_any_text_without_fix_characters_equals_bare_vader(text):
    if touched_by_fixes(text):
        text = "".join(ch for ch in text if ch != VARIATION_SELECTOR and ch not in EMOJI_VALENCE)
    assert SCORER.polarity(text) == bare(text)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40), st.integers(min_value=0, max_value=40))
def test_inserting_a_variation_selector_never_changes_the_score(text, at):
    at = min(at, len(text))
    assert SCORER.polarity(text[:at] + VARIATION_SELECTOR + text[at:]) == SCORER.polarity(text)


SCORER = SentimentScorer(processes=1)


_VADER_WORDS = st.sampled_from(["good", "GOOD", "not", "very", "kind", "of", "but", "bad", "hate", "love", "!!!", "?",
                                ":)", ":(", "no", "never", "extremely", "sort", "least", "great", "ok", "lol", "meh",
                                "without", "doubt", "the", "it", "was", "isn't", "kinda", "so", "  ", "\t", "."])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_VADER_WORDS, st.text(alphabet=st.characters(max_codepoint=127), max_size=8)),
                max_size=14), st.sampled_from(["", " ", "  ", "\n"]))
def test_the_ascii_shortcut_scores_like_vader(words, pad):
    """ASCII texts skip VADER's emoji pass (metrics.sentiment._ascii_fast_analyzer_class): same scores as
    VADER's full polarity_scores, on negations, boosters, 'but', 'kind of', caps, emoticons and padding."""
    text = pad + " ".join(words) + pad
    analyzer = SCORER.analyzer
    assert type(analyzer).__name__ == "AsciiFastAnalyzer"  # the shortcut is what is tested here
    assert analyzer.polarity_scores(text) == SentimentIntensityAnalyzer.polarity_scores(analyzer, text)


def test_the_ascii_shortcut_is_off_when_the_emoji_table_has_an_ascii_key():
    scorer = SentimentScorer(processes=1, emoji_valence={"x": -3.0})  # an ASCII character in the emoji table
    text = "great x thanks"
    assert scorer.analyzer.polarity_scores(text) == SentimentIntensityAnalyzer.polarity_scores(scorer.analyzer, text)
    assert scorer.analyzer._ascii_emoji()
    assert scorer.polarity(text) < SCORER.polarity(text)  # the '#' valence counts: the full pass ran


# --------------------------------------------------------------------------- labels

def test_labels_use_vader_cutoffs_inclusive():
    compound = pd.Series([0.05, 0.0499, 0.0, -0.0499, -0.05, float("nan")], index=[5, 4, 3, 2, 1, 0])
    labels = sentiment_labels(compound)
    assert labels.index.tolist() == [5, 4, 3, 2, 1, 0]
    assert labels.tolist()[:5] == ["positive", "neutral", "neutral", "neutral", "negative"]
    assert pd.isna(labels.iloc[5])


def test_labels_with_custom_cutoffs():
    labels = sentiment_labels(pd.Series([0.4, 0.5, -0.5, -0.2]), cutoffs=Cutoffs(positive=0.5, negative=-0.5))
    assert labels.tolist() == ["neutral", "positive", "negative", "neutral"]


@pytest.mark.parametrize("pos,neg", [(0.0, 0.0), (-0.1, 0.1), (1.5, -0.05), (0.05, -2), ("x", -0.05)])
def test_bad_cutoffs_raise_config_error_naming_the_value(pos, neg):
    with pytest.raises(ConfigError, match=str(pos).replace(".", r"\.")):
        Cutoffs(positive=pos, negative=neg)


# --------------------------------------------------------------------------- frames

def test_score_messages_is_aligned_to_the_index_and_does_not_mutate():
    frame = messages_frame([
        {"conversation_id": "c1", "speaker": "user", "text": "This is great"},
        {"conversation_id": "c1", "speaker": "bot", "text": "Sorry about that"},
        {"conversation_id": "c2", "speaker": "user", "text": "This is great"},
        {"conversation_id": "c2", "speaker": "user", "text": None},
    ]).set_axis([30, 10, 20, 40])
    before = frame.copy()
    scores = score_messages(frame, scorer=SentimentScorer(processes=1))
    pd.testing.assert_frame_equal(frame, before)
    assert scores.name == "compound" and scores.dtype == "float64"
    assert scores.index.tolist() == [30, 10, 20, 40]
    assert scores.loc[30] == scores.loc[20] == bare("This is great") == 0.6249
    assert scores.loc[10] == bare("Sorry about that")
    assert math.isnan(scores.loc[40])


def test_score_messages_scores_each_distinct_text_once():
    frame = pd.DataFrame({"text": ["hi", "hello", "hi", "hi", "hello"]})
    scorer = SentimentScorer(processes=1)
    score_messages(frame, scorer=scorer)
    assert scorer.last_stats.distinct_count == 2 and scorer.last_stats.scored_count == 2


def test_score_messages_empty_and_missing_column():
    empty = pd.DataFrame({"text": pd.Series([], dtype="str")})
    out = score_messages(empty)
    assert len(out) == 0 and out.dtype == "float64"
    with pytest.raises(InsufficientDataError, match="text"):
        score_messages(pd.DataFrame({"body": ["x"]}))


def test_add_sentiment_returns_labelled_copy():
    frame = pd.DataFrame({"text": ["I love it", "where is the parcel", "awful"]})
    scored = add_sentiment(frame)
    assert "compound" not in frame.columns
    assert scored["sentiment"].tolist() == ["positive", "neutral", "negative"]
    with pytest.raises(ConfigError, match="3 messages"):
        add_sentiment(frame, pd.Series([0.1]))


def test_score_keeps_input_order_with_duplicates(scorer):
    out = scorer.score(["good", "bad", "good", ""])
    assert out.tolist() == [bare("good"), bare("bad"), bare("good"), 0.0]
    assert scorer.score([]).tolist() == []


# --------------------------------------------------------------------------- version

def test_analyzer_version_changes_with_the_fixes():
    assert "3.3.2" in ANALYZER_VERSION
    assert analyzer_version() == ANALYZER_VERSION
    assert analyzer_version(emoji_valence={**EMOJI_VALENCE, "😡": -1.0}) != ANALYZER_VERSION
    assert analyzer_version(strip_variation_selector=False) != ANALYZER_VERSION
    assert SentimentScorer(processes=1).version == ANALYZER_VERSION


@pytest.mark.parametrize("kwargs,bad", [
    ({"parallel_threshold": 0}, "0"), ({"processes": 0}, "0"), ({"chunk_size": -5}, "-5"),
    ({"start_method": "teleport"}, "teleport"), ({"emoji_valence": {"ab": -1.0}}, "ab"),
    ({"emoji_valence": {"😡": -9.0}}, "-9.0"),
])
def test_bad_scorer_options_raise_config_error(kwargs, bad):
    with pytest.raises(ConfigError, match=bad):
        SentimentScorer(**kwargs)


# --------------------------------------------------------------------------- cache

class CountingAnalyzer:
    """Wraps scorer.analyzer.polarity_scores to count VADER calls."""

    def __init__(self, scorer: SentimentScorer):
        self.calls = 0
        original = scorer.analyzer.polarity_scores

        def counted(text):
            self.calls += 1
            return original(text)

        scorer.analyzer.polarity_scores = counted


def _frame():
    texts = ["Thanks, that fixed it!", "this is useless 😡", "Hello! How can I help you today?",
             "Hello! How can I help you today?", "I love it \u2764\ufe0f", "where is my order"]
    return pd.DataFrame({"text": texts})


def test_memory_cache_second_scoring_makes_no_analyzer_call():
    cache = MemoryCache()
    first = SentimentScorer(processes=1)
    counter = CountingAnalyzer(first)
    a = score_messages(_frame(), scorer=first, cache=cache)
    assert counter.calls == 5                      # 6 messages, 5 distinct texts
    second = SentimentScorer(processes=1)
    counter2 = CountingAnalyzer(second)
    b = score_messages(_frame(), scorer=second, cache=cache)
    assert counter2.calls == 0
    assert second.last_stats.cached_count == 5
    pd.testing.assert_series_equal(a, b)


def test_store_cache_survives_a_restart(db_path):
    from metrics import store

    db = store.connect(db_path)
    first = SentimentScorer(processes=1, cache=sentiment_cache.StoreCache(db))
    counter = CountingAnalyzer(first)
    a = score_messages(_frame(), scorer=first)
    assert counter.calls == 5
    db.close()

    db = store.connect(db_path)                     # a restart: new connection, new scorer
    cache = sentiment_cache.StoreCache(db)
    assert cache.count(version=ANALYZER_VERSION) == 5
    second = SentimentScorer(processes=1)
    counter2 = CountingAnalyzer(second)
    b = score_messages(_frame(), scorer=second, cache=cache)
    assert counter2.calls == 0 and cache.reads == 5
    pd.testing.assert_series_equal(a, b)

    # a text the cache has not seen is scored alone, and only once
    third = SentimentScorer(processes=1)
    counter3 = CountingAnalyzer(third)
    more = pd.concat([_frame(), pd.DataFrame({"text": ["brand new text"]})], ignore_index=True)
    score_messages(more, scorer=third, cache=cache)
    assert counter3.calls == 1
    db.close()


def test_store_cache_is_keyed_by_analyzer_version(memory_db):
    cache = sentiment_cache.StoreCache(memory_db)
    score_messages(_frame(), scorer=SentimentScorer(processes=1), cache=cache)
    other = SentimentScorer(processes=1, emoji_valence={})
    counter = CountingAnalyzer(other)
    score_messages(_frame(), scorer=other, cache=cache)
    assert counter.calls == 5                      # a different fix set never reads stale scores
    assert cache.count() == 10
    assert sentiment_cache.prune_versions(memory_db, keep=ANALYZER_VERSION) == 5
    assert cache.count() == 5


def test_store_cache_rows_are_hash_version_compound(memory_db):
    cache = sentiment_cache.StoreCache(memory_db)
    cache.put_many({text_hash("hi"): 0.25}, version="v1")
    cache.put_many({text_hash("hi"): 0.99}, version="v1")       # a cached score is kept
    rows = list(memory_db.query("select * from sentiment_cache"))
    assert rows == [{"text_hash": "c22b5f9178342609428d6f51b2c5af4c0bde6a42", "analyzer_version": "v1",
                     "compound": 0.25}]
    many = {text_hash(str(i)): i / 2000 for i in range(1200)}   # more than one SELECT batch
    cache.put_many(many, version="v2")
    assert cache.get_many(list(many) + ["missing"], version="v2") == many


def test_dataset_deletion_prunes_only_scores_no_remaining_message_uses(memory_db):
    from metrics import store

    shared = {"conversation_id": "c1", "speaker": "user", "text": "great, thanks", "timestamp": "2026-08-03T10:00:00Z"}
    only_d1 = {"conversation_id": "c1", "speaker": "user", "text": "my card ends 4242", "timestamp": "2026-08-03T10:01:00Z"}
    d1 = messages_frame([shared, only_d1])
    d2 = messages_frame([shared])
    saved = store.save_messages(memory_db, d1, dataset_name="d1")
    store.save_messages(memory_db, d2, dataset_name="d2")
    cache = sentiment_cache.StoreCache(memory_db)
    score_messages(d1, cache=cache)
    assert cache.count() == 2
    store.delete_dataset(memory_db, saved.dataset_id)
    # the text d2 still holds keeps its score; the hash of the deleted-only text is gone
    hashes = {r[0] for r in memory_db.conn.execute("SELECT text_hash FROM sentiment_cache")}
    assert hashes == {text_hash("great, thanks")}


# --------------------------------------------------------------------------- process pool

@pytest.mark.shared_data
def test_process_pool_equals_single_process_and_reports_progress():
    frame = pd.read_csv(shared_path("twcs_sample", "twcs.csv"))
    texts = frame["text"].dropna().astype(str).unique().tolist()
    calls = []
    pooled = SentimentScorer(processes=2, parallel_threshold=100, chunk_size=500)
    many = pooled.score(texts, progress=lambda done, total: calls.append((done, total)))
    assert pooled.last_stats.processes == 2
    single = SentimentScorer(processes=1)
    assert many.tolist() == single.score(texts).tolist()
    assert single.last_stats.processes == 1
    total = len(texts)
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and len(calls) == 1 + math.ceil(total / 500)


def test_small_jobs_stay_in_process():
    scorer = SentimentScorer(processes=2, parallel_threshold=1000)
    scorer.score([f"text {i}" for i in range(50)])
    assert scorer.last_stats.processes == 1


# --------------------------------------------------------------------------- scoring in the background

def _texts_frame(n: int) -> pd.DataFrame:
    words = ["great", "awful", "ok", "thanks", "useless", "fine", "love it", "not good"]
    return pd.DataFrame({"text": pd.array([f"{words[i % 8]} {i // 8}" if i % 11 else None for i in range(n)],
                                          dtype="str")})


def test_prefetch_starts_only_for_enough_texts_with_a_text_column():
    assert prefetch_scores(pd.DataFrame({"speaker": ["user"]}), min_texts=0) is None
    assert prefetch_scores(_texts_frame(10), min_texts=100) is None
    assert isinstance(prefetch_scores(_texts_frame(10), min_texts=1), PendingScores)


def test_scores_from_the_background_equal_scores_computed_here():
    frame = _texts_frame(300)
    pending = prefetch_scores(frame, scorer=SentimentScorer(processes=1), min_texts=1)
    got = score_messages(frame, pending=pending)
    pd.testing.assert_series_equal(got, score_messages(frame, scorer=SentimentScorer(processes=1)))
    assert pending.done() and len(pending.result()) == frame["text"].nunique()


def test_texts_the_background_did_not_have_are_scored_here():
    frame = _texts_frame(200)
    pending = prefetch_scores(frame.iloc[:50], min_texts=1)  # covers a quarter of the texts
    cache = MemoryCache()
    got = score_messages(frame, pending=pending, cache=cache)
    pd.testing.assert_series_equal(got, score_messages(frame))
    # only the texts the background did not have were scored here (and so written to this cache)
    assert len(cache.entries) == len(set(frame["text"].dropna()) - set(frame["text"].iloc[:50].dropna())) > 0


class _FailingScorer(SentimentScorer):
    def score_distinct(self, texts, *, cache=None, progress=None):
        raise RuntimeError("the pool died")


def test_a_background_failure_is_scored_here_instead():
    frame = _texts_frame(50)
    pending = prefetch_scores(frame, scorer=_FailingScorer(processes=1), min_texts=1)
    with pytest.raises(RuntimeError, match="the pool died"):
        pending.result(timeout=10)
    pd.testing.assert_series_equal(score_messages(frame, pending=pending), score_messages(frame))


def test_result_waits_and_times_out_while_the_scoring_runs():
    import threading

    release = threading.Event()

    class Slow(SentimentScorer):
        def score_distinct(self, texts, *, cache=None, progress=None):
            release.wait(10)
            return super().score_distinct(texts, cache=cache, progress=progress)

    pending = prefetch_scores(_texts_frame(20), scorer=Slow(processes=1), min_texts=1)
    with pytest.raises(TimeoutError, match="still running"):
        pending.result(timeout=0.05)
    assert not pending.done()
    release.set()
    assert len(pending.result(timeout=10)) == _texts_frame(20)["text"].nunique()


def test_the_background_writes_the_store_cache_on_its_own_connection_and_closes_it(db_path):
    from metrics import store

    frame = _texts_frame(120)
    opened = []

    def open_cache():
        cache = sentiment_cache.StoreCache(store.connect(db_path))
        opened.append(cache.db)
        return cache

    pending = prefetch_scores(frame, open_cache=open_cache, min_texts=1)
    pending.result(timeout=30)
    assert pending.join(timeout=30) and pending.cache_error is None  # written after the scores were handed over
    reader = store.connect(db_path)
    try:
        assert sentiment_cache.StoreCache(reader).count(version=ANALYZER_VERSION) == frame["text"].nunique()
    finally:
        reader.close()
    with pytest.raises(Exception, match="closed"):
        opened[0].execute("select 1")
