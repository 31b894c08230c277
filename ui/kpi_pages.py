"""Which page explores each KPI and each improvement-backlog view: the UI's map (``metrics/`` never names pages).

:data:`KPI_PAGES` maps every name of :data:`metrics.kpis.CATALOGUE` to the page that explores it;
:data:`VIEW_PAGES` maps the ``view`` of an improvement-backlog item (:mod:`metrics.improve.backlog`: the family
that shows the problem) to its page. ``tests/metrics/test_kpis.py`` checks that both cover everything and that every page
exists.
"""

from __future__ import annotations

__all__ = ["KPI_PAGES", "VIEW_PAGES", "page_of_view"]

VIEW_PAGES: dict[str, str] = {
    "volume": "pages/2_Engagement.py",
    "outcomes": "pages/3_Outcomes.py",
    "intents": "pages/4_Intents.py",
    "sentiment": "pages/5_Sentiment.py",
    "funnel": "pages/6_Funnel.py",
    "roi": "pages/7_ROI.py",
    "audit": "pages/8_Audit.py",
    "improve": "pages/9_Improvement.py",
    "topics": "pages/10_Topics.py",
}

#: A KPI is explored on its family's page.
KPI_PAGES: dict[str, str] = {
    name: VIEW_PAGES[family] for name, family in (
        ("resolution_rate", "outcomes"), ("escalation_rate", "outcomes"), ("abandonment_rate", "outcomes"),
        ("containment_rate", "outcomes"), ("intent_accuracy", "intents"), ("csat", "sentiment"),
        ("negative_sentiment_rate", "sentiment"), ("lead_conversion_rate", "funnel"), ("conversion_rate", "funnel"),
        ("lead_count", "funnel"), ("revenue", "funnel"), ("cost_per_outcome", "roi"), ("automation_savings", "roi"),
        ("attributed_revenue", "roi"), ("total_conversations", "volume"))
}


def page_of_view(view: str) -> str | None:
    """The page of a backlog item's ``view``; a stored item of an older Chatlens names its page path directly.

    >>> page_of_view("topics"), page_of_view("pages/4_Intents.py"), page_of_view("nowhere")
    ('pages/10_Topics.py', 'pages/4_Intents.py', None)
    """
    if view in VIEW_PAGES:
        return VIEW_PAGES[view]
    if view.startswith("pages/") and view in VIEW_PAGES.values():
        return view
    return None
