"""Text plumbing shared by topic discovery and gap detection: the clustering key of a message, the
distinct-text table, 64-bit text hashes, and the featurizer (word and character n-gram TF-IDF, then LSA).

Everything here is a pure function of the *set* of distinct texts: inputs are sorted by
``(hash, key)`` before anything is fitted, so the row order of the messages never matters.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

#: Characters of a text that are featurized (longer texts are cut): bounds the n-gram work per text.
MAX_FEATURE_CHARS = 1_000
#: Weight of the character n-gram block against the word block (both L2-normalised first). Chosen on
#: HINT3 (see README "Topics and knowledge gaps"): character n-grams carry typos and word variants.
CHAR_WEIGHT = 1.5
#: Character n-gram lengths (``char_wb``). 2-4 rather than 2-5: with the true number of intents, NMI on HINT3's
#: curekart rises by about 0.01 (mean of seeds 0-4) and stays within +-0.005 on the other HINT3 files,
#: BANKING77, CLINC150 and HWU64; 5-grams mostly repeat whole short words the word block already holds.
CHAR_NGRAMS = (2, 4)

_SPACES = re.compile(r"\s+")
_DIGITS = re.compile(r"\d+")
#: Words of at least two letters/digits (sklearn's default token pattern; linear time).
WORD_PATTERN = r"(?u)\b\w\w+\b"


def clustering_key(texts: pd.Series) -> pd.Series:
    """The text two messages must share to count as the same text: case-folded, every run of digits as
    ``0`` (order numbers, dates and amounts do not make a new text), whitespace collapsed, trimmed. Missing
    stays missing; a text with nothing but spaces becomes missing.

    Examples
    --------
    >>> clustering_key(pd.Series(["  Where IS order\\n#123? ", None, "  "], dtype="str")).tolist()
    ['where is order #0?', nan, nan]
    """
    key = texts.astype("str").str.casefold().str.replace(_DIGITS, "0", regex=True)
    key = key.str.replace(_SPACES, " ", regex=True).str.strip()
    return key.where(key.str.len() > 0)


def text_hashes(keys) -> np.ndarray:
    """A stable unsigned 64-bit hash of each key (pandas' SipHash with its fixed key): the same text gives
    the same number in every run and on every machine.

    Examples
    --------
    >>> h = text_hashes(["a", "b", "a"])
    >>> h.dtype.name, bool(h[0] == h[2]), bool(h[0] == h[1])
    ('uint64', True, False)
    """
    values = np.asarray(list(keys) if not isinstance(keys, (np.ndarray, pd.Series)) else keys, dtype=object)
    if len(values) == 0:
        return np.zeros(0, dtype=np.uint64)
    return pd.util.hash_array(values, categorize=False)


@dataclass(frozen=True)
class Distinct:
    """The distinct texts of a set of messages, sorted by ``(hash, key)``.

    ``keys`` (clustering keys), ``shown`` (the most frequent original spelling of each key; ties: the
    smallest), ``hashes`` (uint64), ``counts`` (messages per key), and ``codes``: for each input message,
    the position of its key here (-1 when the message has no text).
    """

    keys: np.ndarray
    shown: np.ndarray
    hashes: np.ndarray
    counts: np.ndarray
    codes: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)


def distinct_texts(texts: pd.Series) -> Distinct:
    """Group ``texts`` by :func:`clustering_key`.

    Examples
    --------
    >>> d = distinct_texts(pd.Series(["Hi", "hi ", "Bye", None], dtype="str"))
    >>> sorted(zip(d.keys.tolist(), d.shown.tolist(), d.counts.tolist()))
    [('bye', 'Bye', 1), ('hi', 'Hi', 2)]
    >>> int((d.codes == -1).sum())
    1
    """
    key = clustering_key(texts)
    codes, uniques = pd.factorize(key, use_na_sentinel=True)
    n = len(uniques)
    if n == 0:
        empty = np.zeros(0, dtype=object)
        return Distinct(empty, empty, np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64),
                        np.full(len(texts), -1, dtype=np.int64))
    keys = np.asarray(uniques, dtype=object)
    hashes = text_hashes(keys)
    order = np.lexsort((keys.astype(str), hashes))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    known = codes >= 0
    new_codes = np.full(len(codes), -1, dtype=np.int64)
    new_codes[known] = rank[codes[known]]
    counts = np.bincount(new_codes[known], minlength=n).astype(np.int64)
    # The spelling shown for a key: its most frequent original text (ties: the smallest string).
    frame = pd.DataFrame({"code": new_codes[known], "text": texts.astype("str").to_numpy(dtype=object)[known]})
    spell = frame.groupby(["code", "text"], sort=False).size().reset_index(name="n")
    spell = spell.sort_values(["code", "n", "text"], ascending=[True, False, True], kind="stable")
    shown = spell.drop_duplicates("code")["text"].to_numpy(dtype=object)
    return Distinct(keys[order], shown, hashes[order], counts, new_codes)


def _prepare(text: str) -> str:
    """What the vectorizers read: lower case, digit runs as ``0``, at most :data:`MAX_FEATURE_CHARS`."""
    return _DIGITS.sub("0", text[:MAX_FEATURE_CHARS].lower())


class Featurizer:
    """Word (1-2 grams, English stop words removed) and character (2-4 grams inside word boundaries) TF-IDF,
    each block L2-normalised, the character block weighted :data:`CHAR_WEIGHT`, then LSA
    (``TruncatedSVD``) to ``components`` dimensions and L2-normalised again (cosine geometry).

    ``fit(texts)`` learns vocabularies, IDF and the SVD on the given (sample of) texts; ``transform``
    then maps any texts. Texts whose words are all stop words still get character features.
    """

    def __init__(self, *, components: int = 100, seed: int = 0):
        self.components = components
        self.seed = seed
        self.word: TfidfVectorizer | None = None
        self.char: TfidfVectorizer | None = None
        self.svd: TruncatedSVD | None = None

    def _vectorizers(self, n: int) -> tuple[TfidfVectorizer, TfidfVectorizer]:
        min_df = 1 if n < 5_000 else 2
        word = TfidfVectorizer(preprocessor=_prepare, ngram_range=(1, 2), sublinear_tf=True, stop_words="english",
                               token_pattern=WORD_PATTERN, min_df=min_df, max_features=200_000, dtype=np.float32)
        char = TfidfVectorizer(preprocessor=_prepare, analyzer="char_wb", ngram_range=CHAR_NGRAMS, sublinear_tf=True,
                               min_df=min_df, max_features=300_000, dtype=np.float32)
        return word, char

    def fit(self, texts) -> "Featurizer":
        self.fit_transform(texts)
        return self

    def fit_transform(self, texts) -> tuple[sp.csr_matrix, np.ndarray]:
        """Fit on ``texts`` and return their word block and LSA vectors (each text is read once)."""
        texts = list(texts)
        word, char = self._vectorizers(len(texts))
        blocks = []
        try:
            words = word.fit_transform(texts).tocsr()
            self.word = word
            blocks.append(normalize(words))
        except ValueError:  # empty vocabulary: only stop words or one-letter words
            self.word = None
            words = sp.csr_matrix((len(texts), 0), dtype=np.float32)
        try:
            chars = char.fit_transform(texts)
            self.char = char
            blocks.append(normalize(chars) * np.float32(CHAR_WEIGHT))
        except ValueError:
            self.char = None
        sparse_x = (sp.hstack(blocks, format="csr", dtype=np.float32) if blocks
                    else sp.csr_matrix((len(texts), 1), dtype=np.float32))
        dims = min(self.components, sparse_x.shape[0] - 1, sparse_x.shape[1] - 1)
        if dims >= 2:
            self.svd = TruncatedSVD(n_components=dims, random_state=self.seed, algorithm="randomized", n_iter=5)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                dense = self.svd.fit_transform(sparse_x).astype(np.float32)
        else:
            self.svd = None
            dense = sparse_x.toarray().astype(np.float32)
        return words, normalize(dense)

    def tfidf(self, texts, *, fit_limit: int = 50_000) -> sp.csr_matrix:
        """Fit the two TF-IDF blocks (no LSA) on the first ``fit_limit`` texts and return every text's row of
        :meth:`sparse`, L2-normalised (each text read once)."""
        texts = list(texts)
        head, tail = texts[:fit_limit], texts[fit_limit:]
        word, char = self._vectorizers(len(head))
        blocks = []
        for vec, weight, attr in ((word, 1.0, "word"), (char, CHAR_WEIGHT, "char")):
            try:
                fitted = vec.fit_transform(head)
            except ValueError:
                setattr(self, attr, None)
                continue
            setattr(self, attr, vec)
            rows = sp.vstack([fitted, vec.transform(tail)], format="csr") if tail else fitted
            blocks.append(normalize(rows) * np.float32(weight))
        if not blocks:
            return sp.csr_matrix((len(texts), 1), dtype=np.float32)
        return normalize(sp.hstack(blocks, format="csr", dtype=np.float32))

    def word_matrix(self, texts) -> sp.csr_matrix:
        """The word TF-IDF block (rows not normalised across blocks); an empty matrix without words."""
        texts = list(texts)
        if self.word is None:
            return sp.csr_matrix((len(texts), 0), dtype=np.float32)
        return self.word.transform(texts).tocsr()

    def vocabulary(self) -> np.ndarray:
        """The word-block feature names (n-grams), aligned with :meth:`word_matrix` columns."""
        if self.word is None:
            return np.zeros(0, dtype=object)
        return np.asarray(self.word.get_feature_names_out(), dtype=object)

    def sparse(self, texts, *, words: sp.csr_matrix | None = None) -> sp.csr_matrix:
        """Both TF-IDF blocks side by side, each row L2-normalised per block, char block weighted."""
        texts = list(texts)
        blocks = []
        if self.word is not None:
            w = words if words is not None else self.word.transform(texts)
            blocks.append(normalize(w))
        if self.char is not None:
            blocks.append(normalize(self.char.transform(texts)) * np.float32(CHAR_WEIGHT))
        if not blocks:
            return sp.csr_matrix((len(texts), 1), dtype=np.float32)
        return sp.hstack(blocks, format="csr", dtype=np.float32)

    def transform(self, texts, *, words: sp.csr_matrix | None = None) -> np.ndarray:
        """Dense, L2-normalised LSA vectors (float32); rows of texts without features are zero."""
        x = self.sparse(texts, words=words)
        if self.svd is None:
            dense = x.toarray().astype(np.float32)
        else:
            dense = self.svd.transform(x).astype(np.float32)
        return normalize(dense)

    @property
    def dimensions(self) -> int:
        return self.svd.n_components if self.svd is not None else -1


def message_columns(messages: pd.DataFrame, *extra: str) -> pd.DataFrame:
    """The columns the topic code reads, on ``messages``' index, with stand-ins for missing ones:
    ``conversation_id`` (str; each row its own conversation when absent), ``row`` (int64, -1 when unreadable;
    1..n when absent), ``timestamp`` (NaT when absent), ``text`` (str), then each of ``extra``: ``speaker``
    ("user" when absent), ``intent`` / ``event`` (str, missing when absent), ``confidence`` (float, NaN).

    Examples
    --------
    >>> message_columns(pd.DataFrame({"text": ["hi", "refund"]}), "speaker").values.tolist()[1][1:]
    [2, NaT, 'refund', 'user']
    """
    n, index = len(messages), messages.index
    has = messages.columns.__contains__
    columns = {
        "conversation_id": (messages["conversation_id"].astype("str") if has("conversation_id")
                            else pd.Series([str(i) for i in range(n)], index=index, dtype="str")),
        "row": (pd.to_numeric(messages["row"], errors="coerce").fillna(-1).astype("int64") if has("row")
                else pd.Series(np.arange(1, n + 1), index=index)),
        "timestamp": (messages["timestamp"] if has("timestamp")
                      else pd.Series(pd.NaT, index=index, dtype="datetime64[ns, UTC]")),
        "text": messages["text"].astype("str"),
    }
    stand_ins = {"speaker": lambda: pd.Series("user", index=index, dtype="str"),
                 "intent": lambda: pd.Series(None, index=index, dtype="str"),
                 "event": lambda: pd.Series(None, index=index, dtype="str"),
                 "confidence": lambda: pd.Series(np.nan, index=index, dtype="float64")}
    for name in extra:
        if name == "confidence":
            columns[name] = pd.to_numeric(messages[name], errors="coerce") if has(name) else stand_ins[name]()
        else:
            columns[name] = messages[name].astype("str") if has(name) else stand_ins[name]()
    return pd.DataFrame(columns)
