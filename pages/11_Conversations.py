"""Conversations: full-text search over the messages (SQLite FTS5), filters kept in the URL, the paged result
list, one conversation's transcript with its outcomes and audit scores, and the CSV export
(body: ui/conversations_view.py)."""

from ui import conversations_view, shell

with shell.page_guard():  # errors become one line, never a traceback (ui/shell.py)
    ctx = shell.setup_page("Conversations", filters=False)  # the page's own filters live in the URL
    conversations_view.render(ctx)
