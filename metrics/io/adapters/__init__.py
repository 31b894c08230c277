"""Native platform exports -> the Chatlens transcript format.

Each platform is one module in this package exposing ``ADAPTER``, an :class:`Adapter`:

* ``detect(data, file_name) -> bool`` looks only at the structure of the first 64 KB
  (decompressed for ``.gz`` / ``.zip``): a header or a few JSON keys. It never raises.
* ``convert(data, file_name, *, options, max_expanded_bytes) -> RawTable`` reads the whole
  file. The table uses Chatlens column names (:data:`metrics.io.schema.COLUMNS`) with string
  values, ``rows`` holds each message's 1-based source record number and ``format`` is the
  platform name. Conversation fields (outcome, rating, ...) are repeated on every row of the
  conversation. Problems with whole records go to ``RawTable.problems``; an unusable file
  raises :class:`~metrics.errors.ValidationError` whose message starts with the platform label.
* ``source_fields`` documents which source field feeds each Chatlens column, ``options``
  the keyword options the adapter accepts.

Adding a platform = adding one module and its name to :data:`_MODULES`.

Examples
--------
>>> list_platforms()[:3]
['rasa', 'copilot_studio', 'dialogflow_cx']
>>> detect_platform(b"session_id,role,message\\n1,user,hi\\n", "chat.csv") is None
True
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from metrics.errors import ConfigError
from metrics.io.readers import DEFAULT_MAX_EXPANDED_BYTES, RawTable, read_table

__all__ = ["Adapter", "ADAPTERS", "read", "detect_platform", "list_platforms", "get_adapter"]

#: Platform modules, in detection order (the most specific signatures first).
_MODULES = ("rasa", "copilot_studio", "dialogflow_cx", "intercom", "langfuse", "twcs", "convai")


@dataclass(frozen=True)
class Adapter:
    """One native export format."""

    name: str
    label: str
    detect: Callable[[bytes, str], bool]
    convert: Callable[..., RawTable]
    #: Chatlens column -> the source field(s) it comes from (documentation, shown in the README).
    source_fields: Mapping[str, str]
    #: Keyword option -> what it does (passed as ``options`` / ``platform_options``).
    options: Mapping[str, str] = field(default_factory=dict)
    #: The export(s) this adapter reads, in one sentence.
    description: str = ""


def _load() -> dict[str, Adapter]:
    registry = {}
    for module_name in _MODULES:
        adapter = importlib.import_module(f"{__name__}.{module_name}").ADAPTER
        registry[adapter.name] = adapter
    return registry


#: name -> :class:`Adapter`, in detection order.
ADAPTERS: dict[str, Adapter] = _load()


def list_platforms() -> list[str]:
    """Names of the registered adapters, in detection order."""
    return list(ADAPTERS)


def get_adapter(name: str) -> Adapter:
    """The adapter called ``name``; :class:`ConfigError` listing the known names otherwise.

    Examples
    --------
    >>> get_adapter("twcs").label
    'Customer support on Twitter (twcs CSV)'
    >>> get_adapter("slack")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    metrics.errors.ConfigError: unknown platform 'slack'; known platforms: ...
    """
    if name not in ADAPTERS:
        raise ConfigError(f"unknown platform {name!r}; known platforms: {', '.join(ADAPTERS)} "
                          "(or 'auto' to detect, 'generic' for a plain table)")
    return ADAPTERS[name]


def detect_platform(data: bytes, file_name: str) -> str | None:
    """Name of the first adapter that recognises the file's structure, or None (a generic table)."""
    for adapter in ADAPTERS.values():
        if adapter.detect(data, file_name):
            return adapter.name
    return None


def read(data: bytes, file_name: str, *, platform: str = "auto",
         max_expanded_bytes: int = DEFAULT_MAX_EXPANDED_BYTES,
         options: Mapping | None = None) -> tuple[RawTable, str | None]:
    """Read an upload through a platform adapter.

    ``platform="auto"`` detects the platform and falls back to :func:`metrics.io.readers.read_table`
    (returning ``(table, None)``) when no adapter recognises the file; an adapter name forces that
    adapter (unknown names raise :class:`ConfigError`). ``options`` are the adapter's keyword
    options; unknown ones raise :class:`ConfigError` naming the accepted ones.
    """
    if platform in (None, "generic"):
        return read_table(data, file_name, max_expanded_bytes=max_expanded_bytes), None
    if platform == "auto":
        name = detect_platform(data, file_name)
        if name is None:
            return read_table(data, file_name, max_expanded_bytes=max_expanded_bytes), None
        adapter = ADAPTERS[name]
    elif isinstance(platform, str):
        adapter = get_adapter(platform)
    else:
        raise ConfigError(f"platform must be 'auto', 'generic' or a platform name, got {platform!r}")
    options = dict(options or {})
    unknown = sorted(set(options) - set(adapter.options))
    if unknown:
        accepted = ", ".join(adapter.options) or "none"
        raise ConfigError(f"unknown option(s) {', '.join(map(repr, unknown))} for platform {adapter.name!r}; "
                          f"accepted: {accepted}")
    table = adapter.convert(data, file_name, options=options, max_expanded_bytes=max_expanded_bytes)
    table.format = adapter.name
    if table.notices is None:
        table.notices = []
    table.notices.insert(0, f"{table.file}: read as {adapter.label} ({adapter.name}).")
    return table, adapter.name
