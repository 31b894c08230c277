"""Message sentiment: VADER's compound score, with its known blind spots fixed.

The score of a message is ``SentimentIntensityAnalyzer().polarity_scores(text)
["compound"]`` from vaderSentiment, a number in [-1, 1]. Two fixes are applied
before scoring, and only they can make a score differ from bare VADER:

1. the emoji variation selector U+FE0F is removed. Without this "❤️"
   (U+2764 U+FE0F) scores 0.0 while a bare "❤" scores +0.6369;
2. emoji that VADER's emoji lexicon describes with words of no valence
   ("pouting face" for 😡, "thumbs down" for 👎, ...) get a valence of their
   own (:data:`EMOJI_VALENCE`, on VADER's -4..+4 lexicon scale). Emoji that
   VADER already scores through their description (😠 "angry face", 😞
   "disappointed face", 😢 😭 "crying face") are left alone.

:func:`touched_by_fixes` tells whether a text can be affected; for every other
text the score equals bare VADER exactly (``tests/metrics/sentiment/test_sentiment.py`` checks
this on the real twcs sample).

Labels use VADER's standard cut-offs: positive when compound >= 0.05,
negative when compound <= -0.05, neutral otherwise (:class:`Cutoffs`).

Speed: :class:`SentimentScorer` scores each distinct text once, looks scores
up in an optional cache (:mod:`metrics.sentiment.cache` keeps them in the
store, keyed by the text's SHA-1 and :data:`ANALYZER_VERSION`), and uses a
chunked process pool above ``parallel_threshold`` texts to score.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from metrics.errors import ConfigError, InsufficientDataError

__all__ = [
    "ANALYZER_VERSION",
    "EMOJI_VALENCE",
    "VARIATION_SELECTOR",
    "LABELS",
    "Cutoffs",
    "ScoreCache",
    "MemoryCache",
    "ScoringStats",
    "SentimentScorer",
    "analyzer_version",
    "text_hash",
    "touched_by_fixes",
    "score_messages",
    "sentiment_labels",
    "add_sentiment",
    "PendingScores",
    "prefetch_scores",
    "PREFETCH_MIN_TEXTS",
]

#: U+FE0F VARIATION SELECTOR-16 (emoji presentation); VADER misses "❤️" because of it.
VARIATION_SELECTOR = "\ufe0f"

#: Valence (VADER's -4..+4 lexicon scale) of emoji whose VADER description carries
#: no sentiment. Each value borrows the lexicon value of the word it stands for.
EMOJI_VALENCE: Mapping[str, float] = {
    "\U0001F621": -2.7,  # 😡 pouting face      ~ "furious" -2.7 (bare VADER: 0.0)
    "\U0001F92C": -3.0,  # 🤬 cursing face      ~ between "fuck" -2.5 and "pissed" -3.2 (0.0)
    "\U0001F624": -2.1,  # 😤 steam from nose   ~ "frustration" -2.1 (0.0)
    "\U0001F44E": -1.6,  # 👎 thumbs down       ~ "dislike" -1.6 (0.0)
    "\U0001F4A9": -2.0,  # 💩 pile of poo       ~ between "crap" -1.6 and "shit" -2.6 (0.0)
    "\U0001F612": -1.6,  # 😒 unamused face     ~ "annoyed" -1.6 (0.0)
    "\U0001F644": -1.6,  # 🙄 rolling eyes      ~ "annoyed" -1.6 (0.0)
    "\U0001F595": -2.8,  # 🖕 middle finger     ~ "contempt" -2.8 (0.0)
    "\U0001F92E": -2.4,  # 🤮 vomiting face     ~ "disgusted" -2.4 (0.0)
    "\U0001F922": -2.1,  # 🤢 nauseated face    ~ "gross" -2.1 (0.0)
    "\U0001F63E": -2.2,  # 😾 pouting cat face  ~ "mad" -2.2 (0.0)
    "\U0001F494": -2.7,  # 💔 broken heart      ~ "heartbreak" -2.7 (bare VADER: +0.2732!)
    "\U0001F44D": 1.5,   # 👍 thumbs up         ~ "like" 1.5: 👎's counterpart, so the fix
                         #                        does not tilt the balance negative (0.0)
}

#: Bump when the way the fixes are applied changes (the table is hashed anyway).
_FIXES_REVISION = 1

LABELS = ("negative", "neutral", "positive")


def analyzer_version(*, emoji_valence: Mapping[str, float] = EMOJI_VALENCE,
                     strip_variation_selector: bool = True) -> str:
    """The cache key of an analyzer configuration.

    It names the vaderSentiment release, the fixes revision and a digest of the
    fixes, so any change to the emoji table or the stripping changes it.

    Examples
    --------
    >>> analyzer_version() == ANALYZER_VERSION
    True
    >>> analyzer_version(emoji_valence={}) == ANALYZER_VERSION
    False
    """
    try:
        vader = importlib.metadata.version("vaderSentiment")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - vendored copy
        vader = "unknown"
    table = ";".join(f"{ord(k):x}={float(v)!r}" for k, v in sorted(emoji_valence.items()))
    digest = hashlib.sha1(f"{table}|fe0f={bool(strip_variation_selector)}".encode()).hexdigest()[:10]
    return f"vader-{vader}+chatlens{_FIXES_REVISION}-{digest}"


#: Version of the default analyzer; part of every cache key.
ANALYZER_VERSION = analyzer_version()


def text_hash(text: str) -> str:
    """SHA-1 hex digest of the UTF-8 text (lone surrogates passed through); the cache key.

    Examples
    --------
    >>> text_hash("hi")
    'c22b5f9178342609428d6f51b2c5af4c0bde6a42'
    """
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def touched_by_fixes(text: str, *, emoji_valence: Mapping[str, float] = EMOJI_VALENCE) -> bool:
    """True when a blind-spot fix may change ``text``'s score (U+FE0F or a fixed emoji).

    Examples
    --------
    >>> touched_by_fixes("I love it")
    False
    >>> touched_by_fixes("I love it \\u2764\\ufe0f")
    True
    """
    return VARIATION_SELECTOR in text or not set(emoji_valence).isdisjoint(text)


# --------------------------------------------------------------------------- labels

@dataclass(frozen=True)
class Cutoffs:
    """Label cut-offs on the compound score: positive >= ``positive``, negative <= ``negative``.

    The defaults are VADER's standard 0.05 / -0.05. ``ConfigError`` unless
    -1 <= negative < positive <= 1.

    Examples
    --------
    >>> Cutoffs().positive, Cutoffs().negative
    (0.05, -0.05)
    """

    positive: float = 0.05
    negative: float = -0.05

    def __post_init__(self):
        try:
            ok = -1.0 <= float(self.negative) < float(self.positive) <= 1.0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(
                f"sentiment cut-offs must satisfy -1 <= negative < positive <= 1 "
                f"(got negative={self.negative!r}, positive={self.positive!r})")


def sentiment_labels(compound: pd.Series, *, cutoffs: Cutoffs = Cutoffs()) -> pd.Series:
    """Label compound scores: 'positive' (>= cutoffs.positive), 'negative' (<= cutoffs.negative),
    'neutral' otherwise; NA where the score is NaN. Same index as ``compound``; empty in, empty out.

    Examples
    --------
    >>> sentiment_labels(pd.Series([0.05, 0.0, -0.05, float("nan")])).tolist()
    ['positive', 'neutral', 'negative', nan]
    """
    values = pd.to_numeric(compound, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    codes = np.where(values >= cutoffs.positive, 0, np.where(values <= cutoffs.negative, 2, 1)).astype(np.int8)
    str_dtype = pd.api.types.pandas_dtype("str")
    if getattr(str_dtype, "storage", None) == "pyarrow":  # three strings spread by Arrow, not 1M Python objects
        import pyarrow as pa

        labels = pa.DictionaryArray.from_arrays(pa.array(codes, mask=np.isnan(values)),
                                                pa.array(["positive", "neutral", "negative"]))
        return pd.Series(pd.array(labels.cast(pa.large_string()), dtype=str_dtype), index=compound.index,
                         name="sentiment")
    out = np.array(["positive", "neutral", "negative"], dtype=object)[codes]
    out[np.isnan(values)] = None
    return pd.Series(out, index=compound.index, dtype="str", name="sentiment")


# --------------------------------------------------------------------------- cache protocol

class ScoreCache(Protocol):
    """What :class:`SentimentScorer` needs from a cache (see :mod:`metrics.sentiment.cache`)."""

    def get_many(self, hashes: Sequence[str], *, version: str) -> dict[str, float]: ...

    def put_many(self, items: Mapping[str, float], *, version: str) -> None: ...


class MemoryCache:
    """A dict-backed :class:`ScoreCache` (tests, one-off scripts).

    Examples
    --------
    >>> cache = MemoryCache()
    >>> cache.put_many({"h": 0.5}, version="v")
    >>> cache.get_many(["h", "x"], version="v")
    {'h': 0.5}
    """

    def __init__(self):
        self.entries: dict[tuple[str, str], float] = {}

    def get_many(self, hashes: Sequence[str], *, version: str) -> dict[str, float]:
        got = {}
        for h in hashes:
            value = self.entries.get((h, version))
            if value is not None:
                got[h] = value
        return got

    def put_many(self, items: Mapping[str, float], *, version: str) -> None:
        for h, value in items.items():
            self.entries[(h, version)] = float(value)


# --------------------------------------------------------------------------- the scorer

@dataclass
class ScoringStats:
    """What the last :meth:`SentimentScorer.score` call did.

    ``distinct_count`` distinct texts were asked for; ``cached_count`` of them
    came from the cache, ``scored_count`` were run through VADER, using
    ``processes`` worker processes (1 = in this process).
    """

    distinct_count: int = 0
    cached_count: int = 0
    scored_count: int = 0
    processes: int = 1


def _build_analyzer(emoji_valence: Mapping[str, float]):
    """A SentimentIntensityAnalyzer whose emoji table maps each fixed emoji to a token of its own.

    The token contains the emoji itself, so no input text can contain it after
    VADER's emoji pass (which replaces every emoji it knows): texts without
    the emoji never meet it. A trailing space keeps the token apart from a
    word glued to the emoji ("😡worst").

    With vaderSentiment 3.3.2 the analyzer skips VADER's emoji pass for ASCII
    texts (:func:`_ascii_fast_analyzer_class`): the same scores, about 15% faster.
    """
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    try:
        vader = importlib.metadata.version("vaderSentiment")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - vendored copy
        vader = "unknown"
    analyzer = _ascii_fast_analyzer_class()() if vader == _FAST_VADER else SentimentIntensityAnalyzer()
    for emoji, valence in emoji_valence.items():
        token = f"emoji{emoji}"
        analyzer.emojis[emoji] = token + " "
        analyzer.lexicon[token] = float(valence)
    return analyzer


#: The vaderSentiment release whose ``polarity_scores`` body :func:`_ascii_fast_analyzer_class` repeats.
_FAST_VADER = "3.3.2"


@functools.lru_cache(maxsize=1)
def _ascii_fast_analyzer_class():
    from vaderSentiment.vaderSentiment import BOOSTER_DICT, SentimentIntensityAnalyzer, SentiText

    class AsciiFastAnalyzer(SentimentIntensityAnalyzer):
        """VADER whose ``polarity_scores`` skips the emoji pass for ASCII texts.

        VADER's pass walks the text character by character, replacing each
        character of its emoji table by a description, then strips the text.
        When no key of that table is ASCII (checked again whenever the table's
        size changes), an ASCII text meets none of them and the pass only
        strips it. The rest is VADER 3.3.2's own ``polarity_scores`` body,
        unchanged; ``tests/metrics/sentiment/test_sentiment.py`` compares both on real and
        generated texts.
        """

        def polarity_scores(self, text):
            if not text.isascii() or self._ascii_emoji():
                return super().polarity_scores(text)
            text = text.strip()
            sentitext = SentiText(text)
            sentiments = []
            words_and_emoticons = sentitext.words_and_emoticons
            for i, item in enumerate(words_and_emoticons):
                valence = 0
                if item.lower() in BOOSTER_DICT:
                    sentiments.append(valence)
                    continue
                if (i < len(words_and_emoticons) - 1 and item.lower() == "kind" and
                        words_and_emoticons[i + 1].lower() == "of"):
                    sentiments.append(valence)
                    continue
                sentiments = self.sentiment_valence(valence, sentitext, item, i, sentiments)
            sentiments = self._but_check(words_and_emoticons, sentiments)
            return self.score_valence(sentiments, text)

        def _ascii_emoji(self) -> bool:
            """Whether the emoji table has an ASCII key (then the shortcut would be wrong)."""
            size = len(self.emojis)
            if getattr(self, "_checked_size", None) != size:
                self._has_ascii_key = any(key.isascii() for key in self.emojis)
                self._checked_size = size
            return self._has_ascii_key

    return AsciiFastAnalyzer


class SentimentScorer:
    """Scores texts with VADER's compound score plus the blind-spot fixes.

    Parameters (keyword-only)
    -------------------------
    emoji_valence : extra emoji valences (default :data:`EMOJI_VALENCE`).
    strip_variation_selector : remove U+FE0F before scoring (default True).
    cache : optional :class:`ScoreCache`; scores found there are not recomputed,
        new scores are written to it.
    progress : optional ``progress(done, total)`` callback; ``total`` is the
        number of distinct texts that need scoring (cache misses). Called with
        (0, total) first and (total, total) last, and after every chunk.
    parallel_threshold : use a process pool when at least this many distinct
        texts need scoring (default 40,000, under a second of VADER work;
        below it the pool's start-up costs more than it saves).
    processes : pool size (default ``os.cpu_count()``); 1 disables the pool.
    chunk_size : texts per pool task and per progress step (default 4,000).
    start_method : multiprocessing start method (default "fork" where the
        platform has it, else "spawn"). Not "spawn"/"forkserver" under
        Streamlit: Streamlit installs the page script as ``__main__``, and
        those start methods re-run ``__main__`` in every worker.

    ``ConfigError`` for a bad option. :attr:`version` is the cache key of this
    configuration (:data:`ANALYZER_VERSION` for the defaults) and
    :attr:`last_stats` describes the last call.

    Examples
    --------
    >>> scorer = SentimentScorer()
    >>> scorer.score(["I love it", "I love it", "\\u2764\\ufe0f"]).tolist()
    [0.6369, 0.6369, 0.6369]
    >>> scorer.last_stats.distinct_count
    2
    """

    def __init__(self, *, emoji_valence: Mapping[str, float] = EMOJI_VALENCE,
                 strip_variation_selector: bool = True, cache: ScoreCache | None = None,
                 progress: Callable[[int, int], object] | None = None,
                 parallel_threshold: int = 40_000, processes: int | None = None,
                 chunk_size: int = 4_000, start_method: str | None = None):
        for name, value, low in (("parallel_threshold", parallel_threshold, 1),
                                 ("chunk_size", chunk_size, 1)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
                raise ConfigError(f"{name} must be an integer >= {low} (got {value!r})")
        if processes is not None and (not isinstance(processes, (int, np.integer))
                                      or isinstance(processes, bool) or processes < 1):
            raise ConfigError(f"processes must be None or an integer >= 1 (got {processes!r})")
        if start_method is None:
            start_method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        if start_method not in multiprocessing.get_all_start_methods():
            raise ConfigError(f"start_method must be one of {multiprocessing.get_all_start_methods()} "
                              f"(got {start_method!r})")
        for emoji, valence in emoji_valence.items():
            if not (isinstance(emoji, str) and len(emoji) == 1):
                raise ConfigError(f"emoji_valence keys must be single characters (got {emoji!r})")
            if not (isinstance(valence, (int, float)) and -4.0 <= float(valence) <= 4.0):
                raise ConfigError(f"emoji valence must be a number in [-4, 4] (got {emoji}={valence!r})")
        self.emoji_valence = dict(emoji_valence)
        self.strip_variation_selector = bool(strip_variation_selector)
        self.cache = cache
        self.progress = progress
        self.parallel_threshold = int(parallel_threshold)
        self.processes = int(processes) if processes is not None else (os.cpu_count() or 1)
        self.chunk_size = int(chunk_size)
        self.start_method = start_method
        self.version = analyzer_version(emoji_valence=self.emoji_valence,
                                        strip_variation_selector=self.strip_variation_selector)
        self.analyzer = _build_analyzer(self.emoji_valence)
        self.last_stats = ScoringStats()

    # -- one text
    def polarity(self, text: str) -> float:
        """The compound score of one text (no cache, no pool)."""
        if self.strip_variation_selector:
            text = text.replace(VARIATION_SELECTOR, "")
        return self.analyzer.polarity_scores(text)["compound"]

    # -- many texts
    def score(self, texts: Iterable[str], *, cache: ScoreCache | None = None,
              progress: Callable[[int, int], object] | None = None) -> np.ndarray:
        """Compound scores of ``texts`` (a float64 array in input order; duplicates scored once).

        ``cache`` and ``progress`` override the instance's for this call.
        Empty input gives an empty array.
        """
        texts = list(texts)
        index: dict[str, int] = {}
        codes = np.fromiter((index.setdefault(t, len(index)) for t in texts), dtype=np.int64,
                            count=len(texts))
        distinct = self.score_distinct(list(index), cache=cache, progress=progress)
        return distinct[codes] if len(codes) else np.empty(0, dtype="float64")

    def score_distinct(self, texts: Sequence[str], *, cache: ScoreCache | None = None,
                       progress: Callable[[int, int], object] | None = None) -> np.ndarray:
        """Like :meth:`score` for texts already known to be distinct (no de-duplication pass)."""
        cache = self.cache if cache is None else cache
        progress = self.progress if progress is None else progress
        result = np.full(len(texts), np.nan, dtype="float64")
        stats = ScoringStats(distinct_count=len(texts))
        todo = range(len(texts))
        hashes: list[str] | None = None
        if cache is not None and len(texts):
            hashes = [text_hash(t) for t in texts]
            found = cache.get_many(hashes, version=self.version)
            todo = []
            for i, h in enumerate(hashes):
                value = found.get(h)
                if value is None:
                    todo.append(i)
                else:
                    result[i] = value
            stats.cached_count = len(texts) - len(todo)
        missing = [texts[i] for i in todo]
        on_chunk = None
        pending: dict[str, float] = {}
        if cache is not None:
            version = self.version

            def on_chunk(start: int, part: list[float]) -> None:
                # written in batches of _CACHE_FLUSH_ROWS while the pool scores the next chunks (one
                # transaction per 4,000-text chunk cost more than the scoring it saved), the rest at the
                # end; an interrupted run keeps what it has scored (the finally below)
                pending.update({hashes[todo[start + j]]: s for j, s in enumerate(part)})
                if len(pending) >= _CACHE_FLUSH_ROWS:
                    cache.put_many(pending, version=version)
                    pending.clear()

        try:
            scores, stats.processes = self._score_missing(missing, progress, on_chunk)
        finally:
            if pending:
                cache.put_many(pending, version=version)
        result[list(todo)] = scores
        stats.scored_count = len(missing)
        self.last_stats = stats
        return result

    def _score_missing(self, texts: list[str], progress, on_chunk) -> tuple[list[float], int]:
        total = len(texts)
        if progress is not None:
            progress(0, total)
        if not total:
            return [], 1
        chunks = [texts[i:i + self.chunk_size] for i in range(0, total, self.chunk_size)]
        use_pool = (self.processes > 1 and total >= self.parallel_threshold
                    and not multiprocessing.current_process().daemon)
        scores: list[float] = []

        def done(part: list[float]) -> None:
            start = len(scores)
            scores.extend(part)
            if on_chunk is not None:
                on_chunk(start, part)
            if progress is not None:
                progress(len(scores), total)

        if use_pool:
            ctx = multiprocessing.get_context(self.start_method)
            workers = min(self.processes, len(chunks))
            with ctx.Pool(workers, initializer=_init_worker,
                          initargs=(self.emoji_valence, self.strip_variation_selector)) as pool:
                for part in pool.imap(_score_chunk, chunks):
                    done(part)
            return scores, workers
        polarity = self.analyzer.polarity_scores
        strip = self.strip_variation_selector
        for chunk in chunks:
            if strip:
                done([polarity(t.replace(VARIATION_SELECTOR, ""))["compound"] for t in chunk])
            else:
                done([polarity(t)["compound"] for t in chunk])
        return scores, 1


_WORKER: SentimentScorer | None = None
_CACHE_FLUSH_ROWS = 50_000  # scores written to the cache per transaction while scoring
_WORKER_NICENESS = 10  # pool workers yield the CPU to the app's own threads


def _init_worker(emoji_valence, strip_variation_selector):
    """Pool initializer: default signal handling (a forked worker must not inherit the host's
    handlers, e.g. Streamlit's SIGTERM handler, or ``Pool.terminate`` could not stop it), then
    one analyzer per worker."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:  # below the app's own priority: scoring in the background takes only the cores the app leaves idle
        os.nice(_WORKER_NICENESS)
    except (AttributeError, OSError):  # pragma: no cover - no nice() (Windows) or not allowed
        pass
    global _WORKER
    _WORKER = SentimentScorer(emoji_valence=emoji_valence,
                              strip_variation_selector=strip_variation_selector, processes=1)


def _score_chunk(texts: list[str]) -> list[float]:
    polarity = _WORKER.analyzer.polarity_scores
    if _WORKER.strip_variation_selector:
        return [polarity(t.replace(VARIATION_SELECTOR, ""))["compound"] for t in texts]
    return [polarity(t)["compound"] for t in texts]


# --------------------------------------------------------------------------- frames

#: Fewer distinct texts than this are scored when a page needs them: a background start would not pay off.
PREFETCH_MIN_TEXTS = 20_000


class PendingScores:
    """Distinct texts being scored in a background thread (:func:`prefetch_scores`).

    :meth:`lookup` waits for the scores and gives them for any texts (NaN for a text it does not
    hold); :meth:`result` gives them in the order of :attr:`texts`, or raises what the thread raised.
    The new scores are written to the cache after they are handed over (:meth:`join` waits for that
    too): the first page does not wait for the cache.
    """

    def __init__(self, texts: list[str]):
        self.texts = texts
        self.stats = ScoringStats()  # the background scorer's, once done
        self.cache_error: BaseException | None = None  # what writing the cache raised, if anything
        self._finished = threading.Event()
        self._scores: np.ndarray | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def done(self) -> bool:
        """Whether the background scoring has ended (with scores or an error)."""
        return self._finished.is_set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the thread is over, cache written and closed; False when ``timeout`` ran out first."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return self._finished.wait(timeout)

    def result(self, timeout: float | None = None) -> np.ndarray:
        """The scores of :attr:`texts` (float64), waiting up to ``timeout`` seconds (None: as long as it takes).

        Raises ``TimeoutError`` when it is not done by then, or the exception the scoring raised.
        """
        if not self._finished.wait(timeout):
            raise TimeoutError(f"sentiment scoring of {len(self.texts)} texts is still running")
        if self._error is not None:
            raise self._error
        return self._scores

    def lookup(self, texts: Sequence[str]) -> np.ndarray:
        """The scores of ``texts`` (NaN where a text was not among :attr:`texts`), after waiting for them."""
        scores = self.result()
        at = pd.Index(self.texts, dtype=object).get_indexer(pd.Index(list(texts), dtype=object))
        out = np.full(len(at), np.nan, dtype="float64")
        found = at >= 0
        out[found] = scores[at[found]]
        return out

    def _run(self, scorer: "SentimentScorer", cache: ScoreCache | None, close_cache: bool) -> None:
        held = _HeldWrites(cache) if cache is not None else None
        try:
            try:
                self._scores = scorer.score_distinct(self.texts, cache=held)
                self.stats = scorer.last_stats
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits for the scores
                self._error = exc
            finally:
                self._finished.set()  # the scores (or the error) are handed over before the cache is written
            if held is not None:
                try:
                    held.write()
                except Exception as exc:  # noqa: BLE001 - the scores are already out; a later page rescores
                    self.cache_error = exc
        finally:
            close = getattr(getattr(cache, "db", None), "close", None)
            if close_cache and close is not None:
                close()


class _HeldWrites:
    """A :class:`ScoreCache` wrapper: lookups go through, writes wait for :meth:`write` (one batch, after the
    scores are handed over, so the waiting page and the writing do not compete)."""

    def __init__(self, cache: ScoreCache):
        self.cache = cache
        self.items: dict[str, float] = {}
        self.version: str | None = None

    def get_many(self, hashes: Sequence[str], *, version: str) -> dict[str, float]:
        return self.cache.get_many(hashes, version=version)

    def put_many(self, items: Mapping[str, float], *, version: str) -> None:
        self.items.update(items)
        self.version = version

    def write(self) -> None:
        if self.items:
            self.cache.put_many(self.items, version=self.version)
            self.items = {}


def prefetch_scores(messages: pd.DataFrame, *, scorer: SentimentScorer | None = None,
                    open_cache: Callable[[], ScoreCache] | None = None,
                    min_texts: int | None = None) -> PendingScores | None:
    """Start scoring the distinct texts of ``messages`` in a background thread; None when there are
    fewer than ``min_texts`` (default :data:`PREFETCH_MIN_TEXTS`) or no ``text`` column.

    The app calls it when a dataset is saved, so the scores are ready, or nearly, when the first page
    needs them: the scoring (a process pool on every core) runs while the dataset is written and the
    first page computes, work that keeps only one core busy. ``open_cache`` is called here, only when
    the scoring starts, to open a score cache of its own (on a store connection nobody else uses
    meanwhile): the background thread looks scores up in it, writes the new ones to it and closes
    its ``db`` at the end. Pass the handle to :func:`score_messages` (``pending=``). ``messages`` is
    not modified.

    Examples
    --------
    >>> frame = pd.DataFrame({"text": ["thanks, great help", "this is useless"]})
    >>> pending = prefetch_scores(frame, min_texts=1)
    >>> score_messages(frame, pending=pending).tolist()
    [0.8658, -0.4215]
    """
    if "text" not in messages.columns:
        return None
    texts = [t if isinstance(t, str) else str(t) for t in pd.unique(messages["text"].dropna())]
    if len(texts) < (PREFETCH_MIN_TEXTS if min_texts is None else min_texts):
        return None
    pending = PendingScores(texts)
    scorer = scorer if scorer is not None else SentimentScorer()
    cache = open_cache() if open_cache is not None else None
    pending._thread = threading.Thread(target=pending._run, args=(scorer, cache, open_cache is not None),
                                       name="chatlens-sentiment-prefetch", daemon=True)
    pending._thread.start()
    return pending


def score_messages(messages: pd.DataFrame, *, scorer: SentimentScorer | None = None,
                   cache: ScoreCache | None = None, pending: PendingScores | None = None) -> pd.Series:
    """Compound score of every message, a float64 Series named ``compound`` on the frame's index.

    Every speaker is scored (pick ``speaker == 'user'`` for the customer's
    sentiment, ``'bot'`` for the bot's tone). Each distinct text is scored
    once; a missing text (NA) gets NaN, an empty one 0.0 (what VADER gives).
    ``cache`` (or the scorer's own) avoids rescoring; ``pending`` (from
    :func:`prefetch_scores`) gives the scores scored in the background (it is
    waited for; a text it lacks, or a background failure, is scored here).
    Empty frame -> empty Series. ``InsufficientDataError`` without a ``text`` column. The frame is
    not modified.

    Examples
    --------
    >>> frame = pd.DataFrame({"text": ["thanks, great help", "this is useless", "thanks, great help"]})
    >>> score_messages(frame).tolist()
    [0.8658, -0.4215, 0.8658]
    """
    if "text" not in messages.columns:
        raise InsufficientDataError(
            f"sentiment needs a 'text' column (the frame has {list(messages.columns)!r})")
    scorer = scorer if scorer is not None else SentimentScorer()
    codes, uniques = pd.factorize(messages["text"], use_na_sentinel=True)
    texts = uniques.tolist()
    if not isinstance(messages["text"].dtype, pd.StringDtype):
        texts = [t if isinstance(t, str) else str(t) for t in texts]
    distinct = None
    if pending is not None:
        try:
            distinct = pending.lookup(texts)
        except Exception:  # noqa: BLE001 - the background scoring failed: score here instead
            distinct = None
    if distinct is None:
        distinct = scorer.score_distinct(texts, cache=cache)
    elif np.isnan(distinct).any():  # texts the background scoring did not have
        todo = np.flatnonzero(np.isnan(distinct))
        distinct[todo] = scorer.score_distinct([texts[i] for i in todo], cache=cache)
    out = np.full(len(codes), np.nan, dtype="float64")
    known = codes >= 0
    out[known] = distinct[codes[known]]
    return pd.Series(out, index=messages.index, name="compound", dtype="float64")


def add_sentiment(messages: pd.DataFrame, compound: pd.Series | None = None, *,
                  scorer: SentimentScorer | None = None, cache: ScoreCache | None = None,
                  cutoffs: Cutoffs = Cutoffs(), pending: PendingScores | None = None) -> pd.DataFrame:
    """A copy of ``messages`` with ``compound`` (float) and ``sentiment`` (label) columns.

    This "scored frame" is the input of :mod:`metrics.sentiment.measures`. Pass
    ``compound`` when the scores are already known (it must share the frame's
    index), otherwise the messages are scored with :func:`score_messages`
    (``scorer``, ``cache`` and ``pending`` are passed on).

    Examples
    --------
    >>> add_sentiment(pd.DataFrame({"text": ["great", "bad"]}))["sentiment"].tolist()
    ['positive', 'negative']
    """
    if compound is None:
        compound = score_messages(messages, scorer=scorer, cache=cache, pending=pending)
    elif not compound.index.equals(messages.index):
        raise ConfigError("compound scores must share the frame's index "
                          f"(got {len(compound)} scores for {len(messages)} messages)")
    scored = messages.copy(deep=False)  # copy-on-write: the new columns never reach ``messages``
    scored["compound"] = pd.to_numeric(compound, errors="coerce").astype("float64")
    scored["sentiment"] = sentiment_labels(scored["compound"], cutoffs=cutoffs)
    return scored


# The family's compute API in one place: the measures (distribution, shifts, ratings, calibration, ...) live in
# metrics.sentiment.measures and are re-exported here, after the scorer they build on is defined.
from metrics.sentiment import measures as _measures  # noqa: E402
from metrics.sentiment.measures import *  # noqa: E402,F401,F403

__all__ = __all__ + [n for n in _measures.__all__ if n not in __all__]
