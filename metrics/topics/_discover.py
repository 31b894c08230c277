"""Topic discovery: which things users ask about, found by clustering what they wrote.

Definition
----------
The *units* clustered are the user messages (``unit="messages"``) or the first user message of each
conversation (``unit="first"``); with ``skip_small_talk`` (the default) messages that are only greetings,
thanks, acknowledgements or bare replies such as "no" (:func:`is_filler`) are left out first, so ``"first"`` is the
first message that asks for something. A message without text is never clustered.

Messages are grouped into *distinct texts* by their clustering key (case-folded, whitespace collapsed); each
distinct text is clustered once and all its messages share its topic. The pipeline (all seeded):

1. distinct texts are ordered by a stable 64-bit hash; the first ``fit_sample`` of them (a hash sample,
   the same whatever the row order, and nearly the same after small data changes) fit the featurizer:
   word 1-2 gram and character 2-4 gram TF-IDF, then LSA to ``components`` dimensions, L2-normalised;
2. the first ``spectral_sample`` of those are clustered by spectral clustering on their nearest-neighbour
   graph (``max(10, sqrt(n) / 2)`` neighbours; scikit-learn's ``spectral_embedding`` (LOBPCG) + ``k_means``,
   as ``SpectralClustering`` does), and each cluster becomes its LSA centroid, each text going to the nearest;
3. the number of topics ``k`` is ``n_topics`` when given; otherwise each ``k`` in
   ``[min_topics, min(max_topics, sqrt(n / 2))]`` (n: texts of the spectral sample; the classic rule of thumb
   bounds the scan) is clustered and scored by its mean silhouette (cosine, on the first
   ``silhouette_sample`` texts), and ``k`` is the *knee* of that curve (:func:`_knee`): on short texts the
   silhouette keeps rising with k, so its maximum would always be the largest k tried. The scores are in
   ``TopicModel.k_scores``;
4. when the fit sample is larger than the spectral sample the centroids are refined by k-means on it;
5. every distinct text goes to its nearest centroid (cosine), in batches. Topics left empty are dropped.

Topic ids, labels and stability
-------------------------------
Topics are numbered 1, 2, ... by decreasing message count on a first run. Given the ``previous`` run's
:class:`TopicSnapshot`, each new topic is matched to an old one by the Hungarian algorithm
(``scipy.optimize.linear_sum_assignment``) on a similarity that is the larger of the estimated Jaccard
overlap of their distinct texts (each old topic keeps a bottom-256 hash sketch of its texts) and the cosine
of their term weights; a pair below ``min_similarity`` is not matched. A matched topic keeps its old id (so a
stored name follows it); an unmatched one gets a new id. ``merges`` (``{topic: into_topic}``) are then
applied. A topic's label is its most distinctive terms (class-based TF-IDF of word 1-2 grams:
``tf(term, topic) * log(1 + A / f(term))``, A the mean number of term occurrences per topic), a bigram
replacing the words it contains; a topic without terms is labelled by its most typical text in quotes.

Empty input (no clusterable message) gives an empty :class:`TopicModel` with typed, empty frames.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans, k_means
from sklearn.manifold import spectral_embedding
from sklearn.metrics import silhouette_score
from sklearn.neighbors import kneighbors_graph
from threadpoolctl import threadpool_limits

from metrics.core.order import message_order
from metrics.errors import ConfigError, InsufficientDataError
from metrics.outcomes import SMALL_TALK_WORDS, is_small_talk
from metrics.topics._text import Distinct, Featurizer, distinct_texts, message_columns

__all__ = [
    "UNITS",
    "SKETCH_SIZE",
    "TopicOptions",
    "TopicSnapshot",
    "TopicModel",
    "topic_units",
    "discover_topics",
    "empty_snapshot",
    "is_filler",
    "REPLY_WORDS",
]

UNITS = ("messages", "first")
#: Distinct-text hashes kept per topic in a snapshot (a bottom-k sketch) to match the next run's topics.
SKETCH_SIZE = 256
_TERMS_KEPT = 20  # term weights kept per topic in a snapshot
_BATCH = 20_000  # distinct texts featurized at a time
_NEIGHBOURS = 10
_NEIGHBOUR_FACTOR = 0.5  # neighbours = max(10, sqrt(n) / 2): larger samples hold larger groups of near-duplicates


def _int_option(name: str, value, minimum: int, *, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class TopicOptions:
    """Options of :func:`discover_topics` (validated; see the module docstring for their meaning).

    ``unit`` ``"messages"`` or ``"first"``; ``n_topics`` a fixed number of topics or None (automatic, by
    silhouette over ``min_topics..max_topics``); ``seed`` makes reruns identical; ``skip_small_talk``;
    ``fit_sample`` / ``spectral_sample`` / ``silhouette_sample`` bound the work on large data;
    ``components`` the LSA dimensions; ``min_similarity`` the matching threshold; ``examples`` and
    ``terms`` per topic; ``n_threads`` for the numeric libraries (1 keeps a shared server responsive).

    Examples
    --------
    >>> TopicOptions(n_topics=8).n_topics
    8
    >>> TopicOptions(unit="all")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    metrics.errors.ConfigError: unit must be one of ...
    """

    unit: str = "messages"
    n_topics: int | None = None
    min_topics: int = 2
    max_topics: int = 30
    seed: int = 0
    skip_small_talk: bool = True
    fit_sample: int = 50_000
    spectral_sample: int = 5_000
    silhouette_sample: int = 2_000
    components: int = 100
    min_similarity: float = 0.3
    examples: int = 5
    terms: int = 10
    n_threads: int = 1
    warm_start: bool = True

    def __post_init__(self):
        if self.unit not in UNITS:
            raise ConfigError(f"unit must be one of {UNITS}, got {self.unit!r}")
        _int_option("n_topics", self.n_topics, 1, allow_none=True)
        low = _int_option("min_topics", self.min_topics, 2)
        if _int_option("max_topics", self.max_topics, 2) < low:
            raise ConfigError(f"max_topics ({self.max_topics}) must be at least min_topics ({low})")
        _int_option("seed", self.seed, 0)
        for name in ("fit_sample", "spectral_sample", "silhouette_sample"):
            _int_option(name, getattr(self, name), 20)
        _int_option("components", self.components, 2)
        _int_option("examples", self.examples, 1)
        _int_option("terms", self.terms, 1)
        _int_option("n_threads", self.n_threads, 1)
        sim = self.min_similarity
        if isinstance(sim, bool) or not isinstance(sim, (int, float)) or not 0.0 <= sim <= 1.0:
            raise ConfigError(f"min_similarity must be a number between 0 and 1, got {sim!r}")
        for name in ("skip_small_talk", "warm_start"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class TopicSnapshot:
    """What a run leaves for the next one to match against (stored by :mod:`metrics.topics.persist`).

    ``topics``: ``topic`` (int64), ``label``, ``text_count``, ``message_count`` (int64) of the run's topics
    *before* merges; ``members``: ``topic``, ``hash`` (uint64) - up to :data:`SKETCH_SIZE` smallest text
    hashes per topic; ``terms``: ``topic``, ``term``, ``weight`` (float64); ``next_id``: the smallest id never
    used, so a new topic never takes the id (and the stored name) of one that disappeared.
    """

    topics: pd.DataFrame
    members: pd.DataFrame
    terms: pd.DataFrame
    next_id: int = 1

    @property
    def empty(self) -> bool:
        return len(self.topics) == 0


def empty_snapshot(next_id: int = 1) -> TopicSnapshot:
    """A snapshot with no topic (a first run)."""
    return TopicSnapshot(
        topics=pd.DataFrame({"topic": pd.Series([], dtype="int64"), "label": pd.Series([], dtype="str"),
                             "text_count": pd.Series([], dtype="int64"),
                             "message_count": pd.Series([], dtype="int64")}),
        members=pd.DataFrame({"topic": pd.Series([], dtype="int64"), "hash": pd.Series([], dtype="uint64")}),
        terms=pd.DataFrame({"topic": pd.Series([], dtype="int64"), "term": pd.Series([], dtype="str"),
                            "weight": pd.Series([], dtype="float64")}),
        next_id=int(next_id))


@dataclass(frozen=True)
class TopicModel:
    """The result of :func:`discover_topics`.

    ``topics``
        one row per topic: ``topic`` (int id), ``label``, ``message_count``, ``text_count`` (distinct texts),
        ``conversation_count``, ``share`` (of clustered messages, in [0, 1]), ``terms`` (the top terms joined
        by ", "), ``matched`` (the id came from the previous run), ``similarity`` (of that match; NaN when not
        matched), ``merged_from`` (ids merged into this topic, ", "-joined; "" when none). By message_count
        descending, then id.
    ``assignments``
        one row per clustered message: ``conversation_id``, ``row``, ``timestamp``, ``text``, ``topic``,
        ``similarity`` (cosine to its topic's centroid), ordered by conversation, time and row.
    ``examples``
        ``topic``, ``rank`` (1 = most typical), ``text``, ``message_count``, ``similarity``.
    ``terms``
        ``topic``, ``rank``, ``term``, ``score`` (class-based TF-IDF).
    ``k_scores``
        ``k``, ``silhouette`` for each number of topics tried (empty with a fixed ``n_topics``).
    ``snapshot``
        the :class:`TopicSnapshot` to store for the next run. ``notes``: plain-text remarks (clamped k, ...).
    """

    options: TopicOptions
    topics: pd.DataFrame
    assignments: pd.DataFrame
    examples: pd.DataFrame
    terms: pd.DataFrame
    k_scores: pd.DataFrame
    snapshot: TopicSnapshot
    method: str = ""
    notes: tuple[str, ...] = ()
    unit_count: int = 0
    distinct_count: int = 0

    @property
    def empty(self) -> bool:
        return len(self.topics) == 0

    @property
    def n_topics(self) -> int:
        return int(len(self.topics))

    @property
    def automatic(self) -> bool:
        return self.options.n_topics is None

    def label_of(self, topic: int) -> str:
        """The label of topic ``topic`` ('' when there is none)."""
        hit = self.topics.loc[self.topics["topic"] == topic, "label"]
        return str(hit.iloc[0]) if len(hit) else ""


# --------------------------------------------------------------------------- units

#: Words of short replies that ask for nothing, besides :data:`metrics.outcomes.SMALL_TALK_WORDS`.
REPLY_WORDS = frozenset("""
no nope nah not please pls plz maybe exactly correct indeed all that that's thats is it it's done same
""".split())
_WORDS = re.compile(r"[a-z']+")


def is_filler(text) -> bool:
    """True for small talk (:func:`metrics.outcomes.is_small_talk`) and for replies made only of small-talk
    and :data:`REPLY_WORDS` words ("no", "yes please", "that's all"): they ask for nothing, so they are not a
    topic.

    Examples
    --------
    >>> is_filler("Nope."), is_filler("yes please"), is_filler("no, my order is late")
    (True, True, False)
    """
    if is_small_talk(text):
        return True
    words = _WORDS.findall(str(text).lower()[:200])
    return all(w in SMALL_TALK_WORDS or w in REPLY_WORDS for w in words)



def _empty_units() -> pd.DataFrame:
    return pd.DataFrame({"conversation_id": pd.Series([], dtype="str"), "row": pd.Series([], dtype="int64"),
                         "timestamp": pd.Series([], dtype="datetime64[ns, UTC]"), "text": pd.Series([], dtype="str")})


def topic_units(messages: pd.DataFrame, *, unit: str = "messages", skip_small_talk: bool = True) -> pd.DataFrame:
    """The messages that topic discovery clusters (see the module docstring), in (conversation, time, row)
    order, with columns ``conversation_id``, ``row``, ``timestamp``, ``text``. The input is not modified.

    Examples
    --------
    >>> m = pd.DataFrame({"conversation_id": ["a", "a", "a", "b"], "speaker": ["user", "bot", "user", "user"],
    ...                   "text": ["hi", "Hello!", "where is my order", "refund please"], "row": [1, 2, 3, 4]})
    >>> topic_units(m)["text"].tolist()
    ['where is my order', 'refund please']
    >>> topic_units(m, unit="first", skip_small_talk=False)["text"].tolist()
    ['hi', 'refund please']
    """
    if unit not in UNITS:
        raise ConfigError(f"unit must be one of {UNITS}, got {unit!r}")
    if "text" not in messages.columns:
        raise InsufficientDataError(f"topics need a 'text' column; the data has {list(messages.columns)!r}")
    if len(messages) == 0:
        return _empty_units()
    mask = messages["text"].notna().to_numpy(bool)
    if "speaker" in messages.columns:
        mask = mask & messages["speaker"].eq("user").fillna(False).to_numpy(bool)
    frame = message_columns(messages)[mask]
    if skip_small_talk and len(frame):
        codes, uniques = pd.factorize(frame["text"])
        talk = np.fromiter((is_filler(u) for u in uniques), dtype=bool, count=len(uniques))
        frame = frame[~talk[codes]]
    frame = frame[frame["text"].str.strip().str.len() > 0]
    frame = frame.iloc[message_order(frame)].reset_index(drop=True)  # conversation order (metrics.core.order)
    if unit == "first":
        frame = frame.drop_duplicates("conversation_id", keep="first").reset_index(drop=True)
    return frame


# --------------------------------------------------------------------------- clustering

def _reassign(z: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """LSA centroids of ``labels`` (empty ones dropped, rows L2-normalised) and each row's nearest centroid."""
    present = np.unique(labels)
    centroids = np.vstack([z[labels == j].mean(axis=0) for j in present]).astype(np.float32)
    norms = np.linalg.norm(centroids, axis=1, keepdims=True)
    centroids = centroids / np.where(norms > 0, norms, 1)
    return centroids, np.argmax(z @ centroids.T, axis=1)


def _silhouette(z: np.ndarray, labels: np.ndarray, sample: int) -> float:
    z, labels = z[:sample], labels[:sample]
    if len(np.unique(labels)) < 2 or len(np.unique(labels)) >= len(labels):
        return float("nan")
    return float(silhouette_score(z, labels, metric="cosine"))


def _spectral(z: np.ndarray, options: TopicOptions, notes: list[str]):
    """Spectral clustering of ``z`` for the chosen (or best-silhouette) k: (centroids, k_scores, method)."""
    n = len(z)
    unique_rows = len(np.unique(np.round(z, 5), axis=0))
    if options.n_topics is not None:
        ks = [min(options.n_topics, unique_rows)]
        if ks[0] < options.n_topics:
            notes.append(f"{options.n_topics} topics were asked for but the data has {unique_rows} distinct "
                         f"text(s) to cluster: {ks[0]} topic(s)")
    else:
        high = min(options.max_topics, unique_rows - 1, max(options.min_topics, int(math.sqrt(n / 2))))
        low = min(options.min_topics, high)
        ks = list(range(low, high + 1)) if high >= 2 else [1]  # too few texts to choose: one topic
    k_max = max(ks)
    if k_max <= 1:
        return np.mean(z, axis=0, keepdims=True), _k_scores([], []), "one topic (too few distinct texts)"
    if k_max >= unique_rows or n < 3:  # as many topics as distinct texts: each text is its own topic
        _, first = np.unique(np.round(z, 5), axis=0, return_index=True)
        return z[np.sort(first)], _k_scores([], []), f"k = {len(first)}: one topic per distinct text"
    neighbours = min(_neighbours(n), n - 1)
    graph = kneighbors_graph(z, n_neighbors=neighbours, include_self=True)
    affinity = 0.5 * (graph + graph.T)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "graph is not fully connected": fine for clustering
        maps = spectral_embedding(affinity, n_components=k_max, eigen_solver="lobpcg",
                                  random_state=options.seed, drop_first=False)
    scores = []
    if len(ks) > 1:
        for k in ks:
            _, labels, _ = k_means(maps[:, :k], k, random_state=options.seed, n_init=4)
            _, labels = _reassign(z, labels, k)
            scores.append(_silhouette(z, labels, options.silhouette_sample))
        k = _knee(ks, scores)
    else:
        k = ks[0]
    _, labels, _ = k_means(maps[:, :k], k, random_state=options.seed, n_init=10)
    centroids, _ = _reassign(z, labels, k)
    how = (f"k = {k}: the knee of the mean silhouette (cosine) over k = {ks[0]}..{ks[-1]}" if len(ks) > 1
           else f"k = {k} fixed")
    return centroids, _k_scores(ks if len(ks) > 1 else [], scores), how


def _neighbours(n: int) -> int:
    return max(_NEIGHBOURS, int(round(math.sqrt(n) * _NEIGHBOUR_FACTOR)))


def _knee(ks: list[int], scores: list[float]) -> int:
    """The knee of the silhouette curve (Kneedle, Satopaa et al. 2011): on the curve up to its highest point,
    both axes scaled to [0, 1], the k farthest above the straight line from the first point to the highest
    (ties: the smaller k); when no k is above that line (no bend), the highest point. A curve that only falls
    gives its first k.

    Silhouette alone keeps rising with k on short texts (finer clusters of near-duplicates are always
    tighter), so its maximum would be the largest k tried; the knee is where more topics stop paying off.

    Examples
    --------
    >>> _knee([2, 3, 4, 5, 6, 7], [0.10, 0.12, 0.40, 0.43, 0.45, 0.46])
    4
    """
    pairs = [(k, s) for k, s in zip(ks, scores) if not math.isnan(s)]
    if not pairs:
        return ks[0]
    top = max(range(len(pairs)), key=lambda i: (pairs[i][1], -pairs[i][0]))
    curve = pairs[:top + 1]
    if len(curve) < 3:
        return curve[-1][0] if len(curve) == 2 and curve[1][1] > curve[0][1] else curve[0][0]
    k0, k1 = curve[0][0], curve[-1][0]
    s0, s1 = curve[0][1], curve[-1][1]
    if s1 <= s0:
        return k0
    gains = [((s - s0) / (s1 - s0)) - ((k - k0) / (k1 - k0)) for k, s in curve]
    best = max(range(len(curve)), key=lambda i: (round(gains[i], 12), -curve[i][0]))
    return curve[best][0] if gains[best] > 1e-12 else k1  # no knee (the curve never bends down): its top


def _k_scores(ks, scores) -> pd.DataFrame:
    return pd.DataFrame({"k": pd.Series(ks, dtype="int64"), "silhouette": pd.Series(scores, dtype="float64")})


def _assign(feat: Featurizer, keys: np.ndarray, centroids: np.ndarray, counts: np.ndarray, *, known=None):
    """Nearest centroid of every key, its cosine, and the per-cluster binary word counts (weighted by the
    number of messages of each key), batch by batch. ``known``: the word block and LSA vectors of the first
    keys, already computed (the fit sample), so they are not featurized again."""
    labels = np.empty(len(keys), dtype=np.int64)
    sims = np.empty(len(keys), dtype=np.float32)
    vocab = len(feat.vocabulary())
    k = len(centroids)
    word_counts = sp.csr_matrix((k, vocab), dtype=np.float64)
    done = 0 if known is None else known[1].shape[0]
    starts = ([0] if done else []) + list(range(done, len(keys), _BATCH))
    for start in starts:
        if start == 0 and done:
            chunk, words, z = keys[:done], known[0], known[1]
        else:
            chunk = keys[start:start + _BATCH]
            words = feat.word_matrix(chunk)
            z = feat.transform(chunk, words=words)
        scores = z @ centroids.T
        lab = np.argmax(scores, axis=1)
        labels[start:start + len(chunk)] = lab
        sims[start:start + len(chunk)] = scores[np.arange(len(chunk)), lab]
        if vocab:
            binary = words.copy()
            binary.data[:] = 1.0
            onehot = sp.csr_matrix((counts[start:start + len(chunk)].astype(np.float64),
                                    (lab, np.arange(len(chunk)))), shape=(k, len(chunk)))
            word_counts = word_counts + onehot @ binary
    return labels, sims, word_counts.tocsr()


def _class_tfidf(word_counts: sp.csr_matrix) -> np.ndarray:
    """Class-based TF-IDF of each (cluster, term): ``tf * log(1 + A / f)`` (BERTopic's c-TF-IDF)."""
    counts = word_counts.toarray()
    if counts.size == 0:
        return counts
    totals = counts.sum(axis=1, keepdims=True)
    tf = counts / np.where(totals > 0, totals, 1)
    f = counts.sum(axis=0)
    mean_per_class = counts.sum() / max(len(counts), 1)
    idf = np.log1p(mean_per_class / np.where(f > 0, f, np.inf))
    return tf * idf


def _top_terms(scores: np.ndarray, vocab: np.ndarray, limit: int) -> list[tuple[str, float]]:
    order = np.argsort(-scores, kind="stable")[:limit]
    return [(str(vocab[i]), float(scores[i])) for i in order if scores[i] > 0]


def _label(terms: list[tuple[str, float]], fallback: str) -> str:
    """Up to three distinctive terms, best first; a term whose words are already shown is skipped, and a
    bigram replaces the shown words it contains only when it scores at least 80 % as high as they do (it is
    as distinctive and reads better); a topic without terms is labelled '"<its most typical text>"'.

    Examples
    --------
    >>> _label([("refund", 0.5), ("broken", 0.2), ("broken item", 0.2), ("need refund", 0.2), ("order", 0.1)], "")
    'refund, broken item, order'
    >>> _label([], "hello there")
    '"hello there"'
    """
    picked: list[tuple[str, float]] = []
    for term, score in terms:
        words = set(term.split())
        if words <= set(w for p, _ in picked for w in p.split()):
            continue
        overlapping = [(p, s) for p, s in picked if set(p.split()) & words]
        if overlapping:
            if len(words) > 1 and all(set(p.split()) <= words and score >= 0.8 * s for p, s in overlapping):
                picked = [(p, s) for p, s in picked if (p, s) not in overlapping]
            else:
                continue
        picked.append((term, score))
        if len(picked) == 3:
            break
    if picked:
        return ", ".join(p for p, _ in picked)
    short = fallback if len(fallback) <= 40 else fallback[:39] + "…"
    return f'"{short}"'


# --------------------------------------------------------------------------- matching

def _match(previous: TopicSnapshot | None, distinct: Distinct, labels: np.ndarray, sizes: np.ndarray,
           cluster_terms: list[list[tuple[str, float]]], min_similarity: float):
    """Old id and similarity per cluster (-1 / NaN when unmatched)."""
    k = len(sizes)
    old_ids = np.full(k, -1, dtype=np.int64)
    sim_out = np.full(k, np.nan)
    if previous is None or previous.empty or k == 0:
        return old_ids, sim_out
    old = previous.topics.reset_index(drop=True)
    index = {int(t): i for i, t in enumerate(old["topic"])}
    hits = np.zeros((len(old), k))
    sketch_len = np.zeros(len(old))
    members = previous.members
    if len(members):
        hashes = members["hash"].to_numpy(dtype=np.uint64)
        rows = np.array([index.get(int(t), -1) for t in members["topic"]])
        at = np.searchsorted(distinct.hashes, hashes)
        at = np.minimum(at, len(distinct.hashes) - 1)
        found = distinct.hashes[at] == hashes
        np.add.at(sketch_len, rows[rows >= 0], 1)
        ok = found & (rows >= 0)
        np.add.at(hits, (rows[ok], labels[at[ok]]), 1)
    old_sizes = old["text_count"].to_numpy(dtype=float)
    inter = hits / np.where(sketch_len > 0, sketch_len, 1)[:, None] * old_sizes[:, None]
    union = old_sizes[:, None] + sizes[None, :].astype(float) - inter
    jaccard = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
    # cosine of term weights
    old_terms: dict[int, dict[str, float]] = {}
    for t, term, w in previous.terms[["topic", "term", "weight"]].itertuples(index=False):
        old_terms.setdefault(index.get(int(t), -1), {})[str(term)] = float(w)
    cosine = np.zeros_like(jaccard)
    for j, terms in enumerate(cluster_terms):
        new = dict(terms[:_TERMS_KEPT])
        nn = math.sqrt(sum(v * v for v in new.values()))
        for i, weights in old_terms.items():
            if i < 0 or nn == 0:
                continue
            dot = sum(v * new.get(t, 0.0) for t, v in weights.items())
            on = math.sqrt(sum(v * v for v in weights.values()))
            cosine[i, j] = dot / (on * nn) if on > 0 else 0.0
    similarity = np.maximum(jaccard, cosine)
    rows, cols = linear_sum_assignment(-similarity)
    for i, j in zip(rows, cols):
        if similarity[i, j] >= min_similarity and similarity[i, j] > 0:
            old_ids[j] = int(old["topic"].iloc[i])
            sim_out[j] = float(similarity[i, j])
    return old_ids, sim_out


def _warm_centroids(previous: TopicSnapshot | None, distinct: Distinct, feat: Featurizer,
                    options: TopicOptions) -> np.ndarray | None:
    """Centroids of the previous run's topics in this run's space: the mean vector of each old topic's sketch
    texts that are still in the data. None (start afresh) without a usable previous run, when warm starts
    are off, or when a fixed ``n_topics`` differs from the number of old topics found."""
    if not options.warm_start or previous is None or previous.empty or len(previous.members) == 0:
        return None
    hashes = previous.members["hash"].to_numpy(dtype=np.uint64)
    at = np.minimum(np.searchsorted(distinct.hashes, hashes), len(distinct.hashes) - 1)
    found = distinct.hashes[at] == hashes
    if not found.any():
        return None
    topics = previous.members["topic"].to_numpy()[found]
    z = feat.transform(distinct.keys[at[found]])
    groups = [z[topics == t].mean(axis=0) for t in np.unique(topics)]
    if len(groups) < 2 or (options.n_topics is not None and options.n_topics != len(groups)):
        return None
    centroids = np.vstack(groups).astype(np.float32)
    norms = np.linalg.norm(centroids, axis=1, keepdims=True)
    return centroids / np.where(norms > 0, norms, 1)


# --------------------------------------------------------------------------- the model

def _empty_model(options: TopicOptions, previous: TopicSnapshot | None, units: int = 0,
                 notes: tuple[str, ...] = ()) -> TopicModel:
    topics = pd.DataFrame({
        "topic": pd.Series([], dtype="int64"), "label": pd.Series([], dtype="str"),
        "message_count": pd.Series([], dtype="int64"), "text_count": pd.Series([], dtype="int64"),
        "conversation_count": pd.Series([], dtype="int64"), "share": pd.Series([], dtype="float64"),
        "terms": pd.Series([], dtype="str"), "matched": pd.Series([], dtype="bool"),
        "similarity": pd.Series([], dtype="float64"), "merged_from": pd.Series([], dtype="str")})
    assignments = _empty_units().assign(topic=pd.Series([], dtype="int64"),
                                        similarity=pd.Series([], dtype="float64"))
    examples = pd.DataFrame({"topic": pd.Series([], dtype="int64"), "rank": pd.Series([], dtype="int64"),
                             "text": pd.Series([], dtype="str"), "message_count": pd.Series([], dtype="int64"),
                             "similarity": pd.Series([], dtype="float64")})
    terms = pd.DataFrame({"topic": pd.Series([], dtype="int64"), "rank": pd.Series([], dtype="int64"),
                          "term": pd.Series([], dtype="str"), "score": pd.Series([], dtype="float64")})
    next_id = previous.next_id if previous is not None else 1
    return TopicModel(options=options, topics=topics, assignments=assignments, examples=examples, terms=terms,
                      k_scores=_k_scores([], []), snapshot=empty_snapshot(next_id), method="no messages to cluster",
                      notes=notes, unit_count=units, distinct_count=0)


def _resolve_merges(merges, ids: set[int]) -> dict[int, int]:
    """``{topic: final topic}`` for merges whose source and final target both exist (chains followed)."""
    if not merges:
        return {}
    raw = {int(a): int(b) for a, b in dict(merges).items() if int(a) != int(b)}
    out = {}
    for source in raw:
        target, seen = raw[source], {source}
        while target in raw and target not in seen:
            seen.add(target)
            target = raw[target]
        if source in ids and target in ids and target != source:
            out[source] = target
    return out


def discover_topics(messages: pd.DataFrame, *, options: TopicOptions = TopicOptions(),
                    previous: TopicSnapshot | None = None, merges: dict | None = None) -> TopicModel:
    """Cluster the user messages of ``messages`` into topics (see the module docstring for every step).

    ``previous`` is the last run's snapshot (ids and names follow matched topics); ``merges`` maps a topic id
    to the id it was merged into. Neither the frame nor the arguments are modified. Raises
    :class:`~metrics.errors.InsufficientDataError` without a ``text`` column and
    :class:`~metrics.errors.ConfigError` for bad options.

    Examples
    --------
    >>> rows = [("a", "where is my order"), ("b", "track my order"), ("c", "order status please"),
    ...         ("d", "I want a refund"), ("e", "refund my money"), ("f", "refund please")]
    >>> m = pd.DataFrame({"conversation_id": [r[0] for r in rows], "speaker": "user",
    ...                   "text": [r[1] for r in rows], "row": range(1, 7)})
    >>> model = discover_topics(m, options=TopicOptions(n_topics=2))
    >>> model.topics["message_count"].tolist()
    [3, 3]
    >>> model.assignments.groupby("topic")["conversation_id"].apply("".join).tolist()
    ['abc', 'def']
    >>> model.topics["label"].tolist()
    ['order, status, track', 'refund, money, want']
    >>> discover_topics(m.iloc[:0]).empty
    True
    """
    if not isinstance(options, TopicOptions):
        raise ConfigError(f"options must be a TopicOptions, got {type(options).__name__}")
    units = topic_units(messages, unit=options.unit, skip_small_talk=options.skip_small_talk)
    distinct = distinct_texts(units["text"])
    if len(distinct) == 0:
        return _empty_model(options, previous, len(units))
    notes: list[str] = []
    with threadpool_limits(limits=options.n_threads):
        n_fit = min(options.fit_sample, len(distinct))
        n_spec = min(options.spectral_sample, n_fit)
        feat = Featurizer(components=options.components, seed=options.seed)
        words_fit, z_fit = feat.fit_transform(distinct.keys[:n_fit])
        warm = _warm_centroids(previous, distinct, feat, options)
        if warm is not None:
            centroids, k_scores = warm, _k_scores([], [])
            method = (f"k = {len(warm)}: the topics of the previous run, re-fitted to these data (warm start; "
                      "re-discover to choose k afresh)")
        else:
            centroids, k_scores, method = _spectral(z_fit[:n_spec], options, notes)
        if n_fit > n_spec and warm is None and len(centroids) > 1:
            km = KMeans(len(centroids), init=centroids, n_init=1, max_iter=50, random_state=options.seed).fit(z_fit)
            centroids, _ = _reassign(z_fit, km.labels_, len(centroids))
            method += f"; centroids refined by k-means on {n_fit:,} texts"
        raw_labels, sims, word_counts = _assign(feat, distinct.keys, centroids, distinct.counts,
                                                known=(words_fit, z_fit))
        del z_fit, words_fit
    vocab = feat.vocabulary()
    # Drop empty clusters and order by size (messages desc, then smallest member hash).
    k = len(centroids)
    msg_counts = np.bincount(raw_labels, weights=distinct.counts, minlength=k).astype(np.int64)
    txt_counts = np.bincount(raw_labels, minlength=k).astype(np.int64)
    first_member = np.full(k, len(distinct), dtype=np.int64)
    np.minimum.at(first_member, raw_labels, np.arange(len(distinct)))
    live = np.flatnonzero(txt_counts > 0)
    live = live[np.lexsort((first_member[live], -msg_counts[live]))]
    remap = np.full(k, -1, dtype=np.int64)
    remap[live] = np.arange(len(live))
    labels = remap[raw_labels]
    msg_counts, txt_counts = msg_counts[live], txt_counts[live]
    ctfidf = _class_tfidf(word_counts[live]) if len(vocab) else np.zeros((len(live), 0))
    cluster_terms = [_top_terms(ctfidf[j], vocab, max(_TERMS_KEPT, options.terms)) if len(vocab) else []
                     for j in range(len(live))]
    # Ids: matched to the previous run, else fresh ones (in size order).
    old_ids, match_sim = _match(previous, distinct, labels, txt_counts, cluster_terms, options.min_similarity)
    next_id = max([previous.next_id if previous is not None else 1]
                  + ([int(previous.topics["topic"].max()) + 1] if previous is not None and not previous.empty
                     else []))
    ids = old_ids.copy()
    for j in range(len(ids)):
        if ids[j] < 0:
            ids[j] = next_id
            next_id += 1
    typical = _typical(labels, sims, distinct, len(ids))
    snapshot = _snapshot(ids, labels, distinct, msg_counts, txt_counts, cluster_terms, typical, next_id)
    merge_map = _resolve_merges(merges, set(int(i) for i in ids))
    final = np.array([merge_map.get(int(i), int(i)) for i in ids], dtype=np.int64)
    text_topic = final[labels]
    if merge_map:
        word_final = _merge_rows(word_counts[live], ids, final)
        ctfidf_final = _class_tfidf(word_final[1]) if len(vocab) else np.zeros((len(word_final[0]), 0))
        term_rows = {int(t): (_top_terms(ctfidf_final[i], vocab, options.terms) if len(vocab) else [])
                     for i, t in enumerate(word_final[0])}
    else:
        term_rows = {int(ids[j]): cluster_terms[j][:options.terms] for j in range(len(ids))}
    message_topic = np.full(len(units), -1, dtype=np.int64)
    known = distinct.codes >= 0
    message_topic[known] = text_topic[distinct.codes[known]]
    message_sim = np.full(len(units), np.nan, dtype=np.float64)
    message_sim[known] = sims[distinct.codes[known]]
    assignments = units.assign(topic=message_topic, similarity=message_sim)
    assignments = assignments[assignments["topic"] >= 0].reset_index(drop=True)
    model = _summaries(options, assignments, distinct, text_topic, sims, term_rows, ids, final, old_ids,
                       match_sim, merge_map, k_scores, snapshot, method, tuple(notes), len(units))
    return model


def _merge_rows(word_counts: sp.csr_matrix, ids: np.ndarray, final: np.ndarray):
    targets = np.unique(final)
    pos = {int(t): i for i, t in enumerate(targets)}
    onehot = sp.csr_matrix((np.ones(len(ids)), ([pos[int(f)] for f in final], np.arange(len(ids)))),
                           shape=(len(targets), len(ids)))
    return targets, (onehot @ word_counts).tocsr()


def _typical(labels: np.ndarray, sims: np.ndarray, distinct: Distinct, k: int) -> list[str]:
    out = []
    for j in range(k):
        members = np.flatnonzero(labels == j)
        best = members[np.lexsort((-distinct.counts[members], -sims[members]))[0]]
        out.append(str(distinct.shown[best]))
    return out


def _snapshot(ids, labels, distinct: Distinct, msg_counts, txt_counts, cluster_terms, typical, next_id):
    topics = pd.DataFrame({"topic": ids.astype("int64"),
                           "label": pd.Series([_label(cluster_terms[j], typical[j]) for j in range(len(ids))],
                                              dtype="str"),
                           "text_count": txt_counts.astype("int64"), "message_count": msg_counts.astype("int64")})
    # distinct texts are in hash order: the first SKETCH_SIZE members of a cluster are its bottom-k sketch
    order = np.argsort(labels, kind="stable")
    grouped = labels[order]
    starts = np.searchsorted(grouped, np.arange(len(ids)))
    rank = np.arange(len(order)) - starts[grouped]
    keep = order[rank < SKETCH_SIZE]
    members = pd.DataFrame({"topic": ids[labels[keep]].astype("int64"),
                            "hash": distinct.hashes[keep].astype("uint64")})
    term_rows = [(int(ids[j]), t, w) for j in range(len(ids)) for t, w in cluster_terms[j][:_TERMS_KEPT]]
    terms = pd.DataFrame({"topic": pd.Series([r[0] for r in term_rows], dtype="int64"),
                          "term": pd.Series([r[1] for r in term_rows], dtype="str"),
                          "weight": pd.Series([r[2] for r in term_rows], dtype="float64")})
    return TopicSnapshot(topics=topics, members=members, terms=terms, next_id=int(next_id))


def _summaries(options, assignments, distinct, text_topic, sims, term_rows, ids, final, old_ids, match_sim,
               merge_map, k_scores, snapshot, method, notes, unit_count) -> TopicModel:
    total = len(assignments)
    topics_final = sorted(set(int(t) for t in final))
    rows = []
    example_rows = []
    term_table = []
    conv = assignments.groupby("topic")["conversation_id"].nunique()
    for t in topics_final:
        members = np.flatnonzero(text_topic == t)
        n_msgs = int(distinct.counts[members].sum())
        order = members[np.lexsort((distinct.keys[members].astype(str), -distinct.counts[members], -sims[members]))]
        top = order[:options.examples]
        for r, i in enumerate(top, start=1):
            example_rows.append((t, r, str(distinct.shown[i]), int(distinct.counts[i]), float(sims[i])))
        terms = term_rows.get(t, [])
        for r, (term, score) in enumerate(terms[:options.terms], start=1):
            term_table.append((t, r, term, score))
        own = [j for j in range(len(ids)) if int(ids[j]) == t]
        matched = bool(own and old_ids[own[0]] >= 0)
        merged = sorted(int(ids[j]) for j in range(len(ids)) if int(final[j]) == t and int(ids[j]) != t)
        rows.append({"topic": t, "label": _label(terms, str(distinct.shown[order[0]])), "message_count": n_msgs,
                     "text_count": int(len(members)), "conversation_count": int(conv.get(t, 0)),
                     "share": n_msgs / total if total else float("nan"),
                     "terms": ", ".join(term for term, _ in terms[:options.terms]),
                     "matched": matched, "similarity": float(match_sim[own[0]]) if matched else float("nan"),
                     "merged_from": ", ".join(str(m) for m in merged)})
    topics = pd.DataFrame(rows).astype({"topic": "int64", "label": "str", "message_count": "int64",
                                        "text_count": "int64", "conversation_count": "int64", "share": "float64",
                                        "terms": "str", "matched": "bool", "similarity": "float64",
                                        "merged_from": "str"})
    topics = topics.sort_values(["message_count", "topic"], ascending=[False, True], kind="stable")
    topics = topics.reset_index(drop=True)
    examples = pd.DataFrame(example_rows, columns=["topic", "rank", "text", "message_count", "similarity"]).astype(
        {"topic": "int64", "rank": "int64", "text": "str", "message_count": "int64", "similarity": "float64"})
    terms = pd.DataFrame(term_table, columns=["topic", "rank", "term", "score"]).astype(
        {"topic": "int64", "rank": "int64", "term": "str", "score": "float64"})
    assignments = assignments.astype({"topic": "int64", "similarity": "float64"})
    return TopicModel(options=options, topics=topics, assignments=assignments, examples=examples, terms=terms,
                      k_scores=k_scores, snapshot=snapshot, method=method, notes=notes, unit_count=unit_count,
                      distinct_count=len(distinct))
