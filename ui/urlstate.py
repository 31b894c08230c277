"""A page's main choices (view and tab selectors, definitions, simple thresholds) in the URL query string, so a
copied link reopens the same view.

Declare the choices once per page, bind them before the widgets and sync them after::

    CHOICES = (urlstate.Choice("view", "overview_view", VIEWS, label="view"),
               urlstate.Choice("window", "overview_ops_window", tuple(OPS_WINDOWS), default="Last 4 weeks"))
    urlstate.bind("overview", CHOICES)     # the link's values (validated) into the widgets' session state
    view = st.segmented_control("View", VIEWS, key="overview_view")   # no default/index: the state has it
    urlstate.sync("overview", CHOICES)     # the widgets' values back into the URL (defaults left out)

:func:`bind` reads a parameter when the URL holds a value this session did not write there (a pasted link, a
drill-down, the first load); an out-of-range value falls back to the default with a notice on the page (shown
on the run that read the link). A
parameter missing from the URL keeps the session's last choice (a page switch clears the query string), so a
choice also survives leaving the page and coming back. Only the declared parameters are touched: the shell's
dataset and filter parameters are left alone. Widget keys should be dataset-independent (the choices are not
data), numbers are validated against their bounds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import streamlit as st

from ui.fmt import literal

__all__ = ["Choice", "RESERVED", "bind", "sync", "read", "check_tab"]

#: Parameters of the shell (ui/shell.py: the dataset and the sidebar filters, on every page): never a page's.
RESERVED = frozenset({"dataset", "period", "channels", "segments", "topics"})

_VALUES = "_urlstate_values"      # {page: {param: value}}: the last value written per page (survives page switches)
_WRITTEN = "_urlstate_written"    # {page: {param: text}}: what this session last put in the URL
_NOTICES = "_urlstate_notices"    # {page: {param: (notice, fallback)}}


@dataclass(frozen=True)
class Choice:
    """One page choice kept in the URL.

    ``param`` is its URL name, ``key`` the widget's session-state key. Either ``options`` (the allowed values;
    the URL holds ``str(value)``) or numeric bounds ``lo``/``hi`` with ``cast`` (``int`` or ``float``).
    ``default`` is the value without a link (the first option when not given); ``label`` names the choice in
    the fallback notice.
    """

    param: str
    key: str
    options: tuple | None = None
    default: object = None
    label: str = ""
    lo: float | None = None
    hi: float | None = None
    cast: type = str

    def __post_init__(self):
        if self.param in RESERVED:
            raise ValueError(f"URL parameter {self.param!r} belongs to the shell (dataset and sidebar filters)")

    @property
    def fallback(self):
        if self.default is not None:
            return self.default
        if self.options:
            return self.options[0]
        return self.lo

    def parse(self, raw: str):
        """The value ``raw`` stands for, or raise ``ValueError`` when it is not one of the choices."""
        if self.options is not None:
            for option in self.options:
                if str(option) == raw:
                    return option
            raise ValueError(raw)
        value = self.cast(raw)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(raw)
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            raise ValueError(raw)
        return value

    def text(self, value) -> str:
        if self.cast is int and self.options is None and not isinstance(value, bool):
            return str(int(value))
        return str(value)

    def notice(self, raw: str) -> str:
        name = self.label or self.param
        if self.options is not None:
            shown = ", ".join(str(o) for o in self.options[:8]) + (", …" if len(self.options) > 8 else "")
            allowed = f"one of: {shown}"
        else:
            allowed = f"a number from {self.text(self.lo)} to {self.text(self.hi)}"
        return (f"The link's {name} “{raw[:80]}” is not {allowed}. Showing {self.text(self.fallback)} "
                "instead.")


def _page_state(name: str, page: str) -> dict:
    return st.session_state.setdefault(name, {}).setdefault(page, {})


def read(choice: Choice) -> tuple[object, str | None]:
    """``choice``'s value in the URL now: ``(value, None)``, ``(fallback, notice)`` when it is invalid, or
    ``(None, None)`` when the URL does not hold it."""
    raw = st.query_params.get(choice.param)
    if raw is None:
        return None, None
    try:
        return choice.parse(raw), None
    except (ValueError, TypeError, OverflowError):
        return choice.fallback, choice.notice(raw)


def bind(page: str, choices, *, show_notices: bool = True) -> None:
    """Before the widgets: put each choice's value into its widget key, from the URL when the URL holds a
    value this session did not write, else the session's last choice, else the default. Shows a notice per
    invalid link value (``show_notices=False`` to leave them to the caller)."""
    values, written, notices = (_page_state(n, page) for n in (_VALUES, _WRITTEN, _NOTICES))
    for choice in choices:
        raw = st.query_params.get(choice.param)
        if raw is not None and raw != written.get(choice.param):
            value, notice = read(choice)
            st.session_state[choice.key] = value
            values[choice.param] = value
            written[choice.param] = raw
            if notice:
                notices[choice.param] = (notice, value)
            else:
                notices.pop(choice.param, None)
        else:
            if raw is None:  # shown once, on the run that read the link
                notices.pop(choice.param, None)
            if choice.key not in st.session_state:
                st.session_state[choice.key] = values.get(choice.param, choice.fallback)
            elif not _valid(choice, st.session_state[choice.key]):
                st.session_state[choice.key] = choice.fallback
    if show_notices:  # the notices of these choices only (a page may bind its choices in several places)
        for choice in choices:
            if choice.param in notices:
                st.warning(literal(notices[choice.param][0]), icon=":material/link_off:")


def _valid(choice: Choice, value) -> bool:
    try:
        return choice.parse(choice.text(value)) == value
    except (ValueError, TypeError, OverflowError):
        return False


def sync(page: str, choices) -> None:
    """After the widgets: write each choice's current value into the URL (a default is left out of it, the
    parameter removed), remembering it for the page. A notice is dropped once its choice has moved on."""
    values, written, notices = (_page_state(n, page) for n in (_VALUES, _WRITTEN, _NOTICES))
    for choice in choices:
        if choice.key not in st.session_state:
            continue
        value = st.session_state[choice.key]
        if value is None or not _valid(choice, value):
            continue
        values[choice.param] = value
        if choice.param in notices and notices[choice.param][1] != value:
            notices.pop(choice.param)
        text = choice.text(value)
        if value == choice.fallback:
            written.pop(choice.param, None)
            if choice.param in st.query_params:
                del st.query_params[choice.param]
        elif st.query_params.get(choice.param) != text:
            st.query_params[choice.param] = text
            written[choice.param] = text
        else:
            written[choice.param] = text


def check_tab(param: str, tabs, *, label: str = "tab") -> None:
    """Before ``st.tabs(tabs, key=param, bind="query-params")``: Streamlit keeps the active tab in the URL
    itself and drops an unknown value silently; this says so on the page instead."""
    raw = st.query_params.get(param)
    if raw is not None and raw not in tabs:
        shown = ", ".join(str(t) for t in tabs)
        st.warning(literal(f"The link's {label} “{raw[:80]}” is not one of: {shown}. Showing {tabs[0]} instead."),
                   icon=":material/link_off:")
