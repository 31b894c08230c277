"""Every trend chart shows the change log: entries appear as rules in the rendered chart specs."""

from __future__ import annotations

import json

from conftest import apptest_page
from metrics import store
from metrics.improve import store as goals_store
from metrics.improve.changelog import ChangeEntry
from metrics.improve.changelog_charts import ANNOTATION_COLOR


def _log_a_change(db_path) -> None:
    db = store.connect(str(db_path))
    goals_store.add_change(db, ChangeEntry("2026-09-21", "Deploy nlu-v2 (annotation test)", "training_data",
                                           "intent_accuracy", why="billing confusions"))
    db.close()


def _specs(at) -> str:
    return " ".join(json.dumps(chart.proto.spec) if hasattr(chart.proto, "spec") else str(chart.proto)
                    for chart in at.get("arrow_vega_lite_chart") + at.get("vega_lite_chart"))


def test_without_a_change_log_no_annotation_layer_is_drawn(db_path):
    at = apptest_page("pages/2_Engagement.py")
    assert ANNOTATION_COLOR not in _specs(at)


def test_change_log_is_drawn_on_the_trend_charts(db_path):
    at = apptest_page("app.py")  # loads the sample into the fresh store
    _log_a_change(db_path)
    for page in ("pages/2_Engagement.py", "pages/3_Outcomes.py", "pages/4_Intents.py"):
        at = apptest_page(page)
        specs = _specs(at)
        # the annotation layer: a dashed rule in the change-log colour (its data, the entry, travels apart)
        assert ANNOTATION_COLOR in specs and "strokeDash" in specs, page
