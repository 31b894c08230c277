"""No invented value shown as data: on a dataset without lead events the Overview's business strip says "no lead
data" instead of the ROI scenario's assumed 100 leads; KPIs that mix in assumed costs say so on their tile and in
their tooltip; the sample (which has lead events) shows its leads."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from conftest import ROOT, shared_path


def _overview(dataset_id: int | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    if dataset_id is not None:
        at.query_params["dataset"] = str(dataset_id)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_without_lead_events_no_leads_or_revenue_are_invented(db_path):
    from metrics import store
    from metrics.io.loaders import load_path

    db = store.connect(str(db_path))
    result = load_path(str(shared_path("rasa_tracker_customer_support", "trackers.jsonl")),
                       pseudonym_key=store.pseudonym_key(db))
    saved = store.save_messages(db, result.frame, dataset_name="rasa", source_format=result.format)
    db.close()
    at = _overview(saved.dataset_id)
    tiles = {m.label: m for m in at.metric}
    assert tiles["Leads per month"].value == "no lead data"
    assert tiles["Attributed revenue · period"].value == "no lead data"
    assert "set the leads per month on the ROI page" in tiles["Leads per month"].help
    assert any("no lead data, so no leads or revenue are shown" in c.value for c in at.caption)
    assert not any(m.value in ("100", "$100,000.00") for m in at.metric)


def test_the_sample_shows_its_leads_and_marks_assumed_costs(db_path):
    at = _overview()
    tiles = {m.label: m for m in at.metric}
    assert tiles["Leads per month"].value not in ("no lead data", "100")
    assert "from the data" in tiles["Leads per month"].help
    cost = tiles["Cost per outcome · last week"]
    assert "**From:** the data and your assumed costs" in cost.help
    assert "**From:** the data only" in tiles["Resolution rate · last week"].help
    captions = [c.value for c in at.caption]
    assert sum("uses assumed costs" in c for c in captions) == sum(
        1 for m in at.metric if m.label.startswith(("Cost per outcome ·", "Cost savings ·", "Attributed revenue ·"))
        and m.label.endswith(("· last week", "· all data")))
    # the business strip's money tiles are the registry's ROI KPIs on the selected data: they say so too
    for label in ("Attributed revenue · period", "Cost savings · period", "Cost per outcome · period"):
        assert "**From:** the data and your assumed costs" in tiles[label].help, label
        assert "**Definition:** ROI model:" in tiles[label].help, label
