"""Topics and knowledge gaps: what users ask about, how each topic ends, and what the bot does not handle.

The compute API is re-exported here from private modules (definitions in their docstrings):

* :mod:`metrics.topics._discover` - topic discovery (word and character n-gram TF-IDF, LSA, spectral
  clustering, automatic number of topics, ids matched across runs, labels, examples);
* :mod:`metrics.topics._outcomes` - outcomes, sentiment, CSAT and week-over-week change per topic, trends;
* :mod:`metrics.topics._gaps` - knowledge gaps (fallback, low confidence, learned "did not understand"
  templates, rephrasing, escalation or abandonment right after), gap topics ranked by frequency x impact;
* :mod:`metrics.topics._training` - gap topics as training data (CSV, Rasa NLU YAML), nearest intents,
  overlapping intents;
* :mod:`metrics.topics._names` - stored names applied to a topic table.

Charts are in :mod:`metrics.topics.charts`, the stored state in :mod:`metrics.topics.persist`, and the
``topics`` subcommand in :mod:`metrics.topics.cli`.
"""

from metrics.topics._discover import SKETCH_SIZE, UNITS, TopicModel, TopicOptions, TopicSnapshot
from metrics.topics._discover import REPLY_WORDS, discover_topics, empty_snapshot, is_filler, topic_units
from metrics.topics._gaps import MIN_REQUEST_WORDS, SIGNALS, GapOptions, GapReport
from metrics.topics._gaps import gap_messages, gap_report, misunderstanding_templates
from metrics.topics._names import NAME_SOURCES, with_names
from metrics.topics._outcomes import TREND_FREQUENCIES, topic_growth, topic_outcomes, topic_trend, week_start
from metrics.topics._text import clustering_key, text_hashes
from metrics.topics._training import examples_csv, intent_examples, intent_name, nearest_intents
from metrics.topics._training import overlapping_intents, rasa_nlu_yaml, training_examples

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
    "TREND_FREQUENCIES",
    "topic_outcomes",
    "topic_growth",
    "topic_trend",
    "week_start",
    "SIGNALS",
    "MIN_REQUEST_WORDS",
    "GapOptions",
    "GapReport",
    "gap_messages",
    "gap_report",
    "misunderstanding_templates",
    "NAME_SOURCES",
    "with_names",
    "clustering_key",
    "text_hashes",
    "intent_examples",
    "nearest_intents",
    "overlapping_intents",
    "intent_name",
    "training_examples",
    "examples_csv",
    "rasa_nlu_yaml",
]
