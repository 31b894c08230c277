"""Every string that reaches a Markdown-rendering Streamlit element is either written in the code or goes
through ``ui.fmt.literal`` (the one escape helper): checked on the syntax tree of app.py, pages/ and ui/.

The rule (strict, and checked without running anything): the text argument of a Markdown-rendering call
(``st.markdown``/``caption``/``title``/``header``/``subheader``/``write``, ``info``/``warning``/``error``/
``success``/``toast``, ``expander``/``popover``/``status``/``dialog`` and ``tabs`` labels, ``metric`` label,
value and delta, every widget label and ``page_link`` label, ``progress``/``spinner`` text, radio
``captions``, and the ``help`` tooltip of all of them and of ``st.column_config`` columns; radio,
segmented-control and pills *options*, which render Markdown too, through their ``format_func``) must be
*safe*, where safe is:

- a constant written in the code: a string literal, a number, an ``ALL_CAPS`` module constant (``NAME``,
  ``mod.NAME``, ``NAME[...]``, ``NAME.get``) or a dict/list/tuple literal of safe values;
- a call of ``literal`` (the escape) or of a ``ui.fmt`` number formatter (``pct``, ``num`` with a numeric
  pattern), or of ``int``/``float``/``len``/``round``/``abs``/``bool``; ``money`` and ``by_unit`` (one ``$``
  each) only as the whole argument, since two amounts in one text pair into LaTeX;
- an f-string, ``+`` concatenation, ``%`` or ``str.format`` whose every interpolated part is safe, **or** is
  an f-string field with a numeric or date format spec that a ``str`` would refuse (``{n:,}``, ``{r:.1%}``,
  ``{t:%Y-%m-%d}``: ``format("x", ",")`` raises, so such a field can only ever show a number or a date), and
  never with a ``!r``/``!s`` conversion;
- ``a if c else b``, ``a or b`` and ``sep.join(<safe for each item>)`` of safe parts;
- a local name (or a function of the same module) whose every binding (``return``) is safe; a parameter,
  a loop variable, an attribute or any other call is not.

``st.badge`` escapes brackets itself, so its label must be a constant (``literal`` would be escaped twice).
Markdown *documents* built in ``metrics/`` (the weekly review, the improvement report) are accepted only from
the builders listed in :data:`METRICS_MARKDOWN_BUILDERS`, wrapped in ``ui.fmt.harden_markdown``.

``ui/auth.py`` (owned by the sign-in engineer) is checked like every other file.
"""

from __future__ import annotations

import ast
import re
import string
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Element -> positions of its Markdown text arguments (positional index, keyword name).
TEXT_ARGS: dict[str, tuple[tuple[int, str], ...]] = {
    **{name: ((0, "body"),) for name in ("markdown", "caption", "title", "header", "subheader", "info", "warning",
                                          "error", "success", "toast", "write")},
    "radio": ((0, "label"), (99, "captions")),
    **{name: ((0, "label"),) for name in ("expander", "popover", "status", "button", "download_button",
                                          "link_button", "form_submit_button", "checkbox", "toggle",
                                          "selectbox", "multiselect", "slider", "select_slider", "text_input",
                                          "number_input", "text_area", "date_input", "time_input", "file_uploader",
                                          "camera_input", "color_picker", "segmented_control", "pills",
                                          "audio_input", "feedback")},
    "metric": ((0, "label"), (1, "value"), (2, "delta"), (99, "delta_description")),
    "tabs": ((0, "tabs"),),
    "dialog": ((0, "title"),),
    "page_link": ((1, "label"),),
    "progress": ((1, "text"),),
    "spinner": ((0, "text"),),
    "badge": ((0, "label"),),
}
#: Widgets whose options are drawn as Markdown (selectbox and multiselect options are plain text).
MARKDOWN_OPTIONS = {"radio", "segmented_control", "pills"}
#: Receivers whose methods share an element's name but are not Streamlit (``logger.error`` ...).
NOT_STREAMLIT = {"logging", "logger", "log", "LOGGER", "LOG", "warnings", "re", "os", "sys", "pd", "np", "math",
                 "json", "str", "self"}
ESCAPE = "literal"
#: ``ui.fmt`` number formatters whose text cannot hold Markdown.
NUMBER_FORMATTERS = {"pct", "num"}
#: ``ui.fmt`` formatters that write one ``$``: safe as a whole argument (``st.metric(label, money(x))``), but two
#: amounts in one text pair into LaTeX (``$5 and $6``), so inside a larger text they go through ``literal``.
LONE_FORMATTERS = {"money", "by_unit"}
NUMBER_BUILTINS = {"int", "float", "len", "round", "abs", "bool"}
#: Markdown documents built by metrics/ (reviewed: every data value in them goes through
#: ``metrics.improve.review.md_escape``), accepted inside ``harden_markdown(...)`` only.
METRICS_MARKDOWN_BUILDERS = {"review_markdown", "improvement_report"}
HARDEN = "harden_markdown"
CONSTANT_NAME = re.compile(r"^_?[A-Z][A-Z0-9_]*$")
#: Methods that put a value into a list, set or dict bound to a local name.
MUTATORS = {"append", "extend", "insert", "add", "update", "setdefault"}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    function: str
    element: str
    argument: str
    source: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} in {self.function}(): st.{self.element} {self.argument}: {self.source}"


# --------------------------------------------------------------------------- the checker
def _is_constant_name(name: str) -> bool:
    return bool(CONSTANT_NAME.match(name))


def _str_rejects(spec: str) -> bool:
    """True when ``format(some_str, spec)`` raises: the field can only show a number or a date."""
    try:
        format("x", spec)
    except (ValueError, TypeError):
        return True
    return False


def _numeric_pattern(node) -> bool:
    """A ``str.format`` pattern constant whose every field has a spec a ``str`` refuses (``"{:.1f} min"``)."""
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        return False
    try:
        fields = [(name, spec) for _, name, spec, _ in string.Formatter().parse(node.value) if name is not None]
    except ValueError:
        return False
    return bool(fields) and "$" not in node.value and all(_str_rejects(spec or "") for _, spec in fields)


class _Scopes:
    """Bindings per scope (module, function, lambda), to decide whether a local name is safe."""

    def __init__(self, tree: ast.Module):
        self.parent: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self.parent[child] = node
        self.tree = tree
        self.functions: dict[str, list[ast.FunctionDef]] = {}
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.functions.setdefault(node.name, []).append(node)

    def scope_of(self, node):
        node = self.parent.get(node)
        while node is not None and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda,
                                                          ast.Module)):
            node = self.parent.get(node)
        return node

    def enclosing_function_name(self, node) -> str:
        scope = self.scope_of(node)
        while scope is not None and not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Module)):
            scope = self.scope_of(scope)
        return "<module>" if scope is None or isinstance(scope, ast.Module) else scope.name

    @staticmethod
    def _own_nodes(scope):
        """The nodes of ``scope`` that are not inside a nested function or lambda."""
        body = scope.body if isinstance(scope.body, list) else [scope.body]
        stack = list(body)
        while stack:
            node = stack.pop()
            yield node
            for child in ast.iter_child_nodes(node):
                if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                    stack.append(child)

    def bindings(self, scope, name: str) -> list | None:
        """What ``name`` is bound to in ``scope`` (value expressions; ``None`` items for unknown bindings), or
        None when the scope does not bind it."""
        found: list = []
        if not isinstance(scope, ast.Module):
            args = scope.args
            params = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
            if any(p is not None and p.arg == name for p in params):
                found.append(None)
        for node in self._own_nodes(scope):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    found += self._bound(target, name, node.value)
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None:
                value = node.value if isinstance(node, ast.AnnAssign) else ast.BinOp(node.target, node.op,
                                                                                      node.value)
                found += self._bound(node.target, name, value)
            elif isinstance(node, ast.NamedExpr):
                found += self._bound(node.target, name, node.value)
            elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
                found += [None] * len(self._bound(node.target, name, None))
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if item.optional_vars is not None:
                        found += [None] * len(self._bound(item.optional_vars, name, None))
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                found += [None for alias in node.names if (alias.asname or alias.name.split(".")[0]) == name]
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
                found.append(None)
            elif isinstance(node, ast.ExceptHandler) and node.name == name:
                found.append(None)
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and isinstance(node.func.value, ast.Name) and node.func.value.id == name
                  and node.func.attr in MUTATORS):  # parts.append(x): x becomes part of the value
                found += list(node.args[-1:]) + [k.value for k in node.keywords]
            elif (isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store)
                  and isinstance(node.value, ast.Name) and node.value.id == name):  # parts[k] = x
                found.append(self.parent_value(node))
        return found or None

    def parent_value(self, target):
        """The value assigned to ``target`` (``name[k] = value``), None when it is not a plain assignment."""
        parent = self.parent.get(target)
        return parent.value if isinstance(parent, ast.Assign) else None

    @staticmethod
    def _bound(target, name: str, value) -> list:
        if isinstance(target, ast.Name):
            return [value] if target.id == name else []
        if isinstance(target, (ast.Tuple, ast.List)):
            # unpacking: each element is bound to a part of the value (safe when the whole value is)
            return [value for elt in target.elts if isinstance(elt, ast.Name) and elt.id == name]
        return []


class Checker:
    def __init__(self, source: str, path: str = "<snippet>"):
        self.path = path
        self.tree = ast.parse(source)
        self.scopes = _Scopes(self.tree)
        self.source = source
        self._in_progress: set = set()
        self.findings: list[Finding] = []

    # ----------------------------------------------------------------- safe expressions
    def safe(self, node, *, calls: bool = True) -> bool:
        """True when ``node`` can only produce text written in the code or escaped (see the module docstring).
        ``calls=False``: constants only (no escape call either), for ``st.badge``."""
        if node is None:
            return False
        if isinstance(node, ast.Constant):
            return True
        if isinstance(node, ast.JoinedStr):
            return all(self._safe_part(v, calls=calls) for v in node.values)
        if isinstance(node, ast.FormattedValue):
            return self._safe_part(node, calls=calls)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
            right = node.right.elts if isinstance(node.op, ast.Mod) and isinstance(node.right, ast.Tuple) \
                else [node.right]
            return self.safe(node.left, calls=calls) and all(self.safe(r, calls=calls) for r in right)
        if isinstance(node, ast.IfExp):
            return self.safe(node.body, calls=calls) and self.safe(node.orelse, calls=calls)
        if isinstance(node, ast.BoolOp):
            return all(self.safe(v, calls=calls) for v in node.values)
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return all(self.safe(e, calls=calls) for e in node.elts)
        if isinstance(node, ast.Dict):
            return all(self.safe(v, calls=calls) for v in node.values)
        if isinstance(node, ast.Name):
            return _is_constant_name(node.id) or self._safe_name(node, calls=calls)
        if isinstance(node, ast.Attribute):
            return _is_constant_name(node.attr) or (node.attr == "get" and self._constant_table(node.value))
        if isinstance(node, ast.Subscript):
            return self._constant_table(node.value) or (isinstance(node.value, (ast.Dict, ast.List, ast.Tuple))
                                                        and self.safe(node.value, calls=calls))
        if isinstance(node, (ast.ListComp, ast.GeneratorExp)):
            return self.safe(node.elt, calls=calls) or self._constant_comprehension(node)
        if isinstance(node, ast.Call) and calls:
            return self._safe_call(node)
        return False

    def _constant_table(self, node) -> bool:
        """``NAME``, ``mod.NAME`` or ``NAME[...]`` (a table defined in code)."""
        if isinstance(node, ast.Name):
            return _is_constant_name(node.id)
        if isinstance(node, ast.Attribute):
            return _is_constant_name(node.attr)
        if isinstance(node, ast.Subscript):
            return self._constant_table(node.value)
        return False

    def _constant_comprehension(self, node) -> bool:
        """``[c for c in ("a", "b") if ...]``: items of a constant sequence."""
        return (len(node.generators) == 1 and isinstance(node.elt, ast.Name)
                and isinstance(node.generators[0].target, ast.Name)
                and node.generators[0].target.id == node.elt.id
                and self.safe(node.generators[0].iter, calls=False))

    def _safe_part(self, node, *, calls: bool) -> bool:
        if isinstance(node, ast.Constant):
            return True
        if not isinstance(node, ast.FormattedValue) or node.conversion != -1:
            return False  # !r / !s / !a show the raw text (quoted), escapes and all
        if self.safe(node.value, calls=calls):
            return True
        spec = node.format_spec
        if spec is None or not all(isinstance(v, ast.Constant) for v in spec.values):
            return False
        return _str_rejects("".join(str(v.value) for v in spec.values))

    def _safe_call(self, node: ast.Call) -> bool:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if name == ESCAPE or name in NUMBER_BUILTINS and isinstance(func, ast.Name):
            return True
        if name in NUMBER_FORMATTERS:
            if name != "num":
                return True
            pattern = node.args[1] if len(node.args) > 1 else next(
                (k.value for k in node.keywords if k.arg == "fmt"), None)
            return pattern is None or _numeric_pattern(pattern)
        if name == HARDEN:
            inner = node.args[0] if node.args else None
            return isinstance(inner, ast.Call) and (
                (isinstance(inner.func, ast.Name) and inner.func.id in METRICS_MARKDOWN_BUILDERS)
                or (isinstance(inner.func, ast.Attribute) and inner.func.attr in METRICS_MARKDOWN_BUILDERS))
        if isinstance(func, ast.Attribute) and func.attr == "join":
            items = node.args[0] if node.args else None
            return self.safe(func.value) and items is not None and self.safe(items)
        if isinstance(func, ast.Attribute) and func.attr == "format" and isinstance(func.value, ast.Constant):
            return all(self.safe(a) for a in node.args) and all(self.safe(k.value) for k in node.keywords)
        if isinstance(func, ast.Name) and func.id in self.scopes.functions:
            return self._safe_function(func.id)
        return False

    def _safe_function(self, name: str) -> bool:
        """A function of this module whose every ``return`` value is safe (its parameters are not)."""
        key = ("def", name)
        if key in self._in_progress:
            return True
        self._in_progress.add(key)
        try:
            for fn in self.scopes.functions[name]:
                returns = [n for n in _Scopes._own_nodes(fn) if isinstance(n, ast.Return)]
                if not returns or not all(self.safe(r.value) for r in returns):
                    return False
            return True
        finally:
            self._in_progress.discard(key)

    def _safe_name(self, node: ast.Name, *, calls: bool) -> bool:
        scope = self.scopes.scope_of(node)
        while scope is not None:
            bound = self.scopes.bindings(scope, node.id)
            if bound is not None:
                key = (id(scope), node.id)
                if key in self._in_progress:
                    return True  # a self-reference (x = x + ...): the other bindings decide
                self._in_progress.add(key)
                try:
                    return all(value is not None and self.safe(value, calls=calls) for value in bound)
                finally:
                    self._in_progress.discard(key)
            scope = self.scopes.scope_of(scope) if not isinstance(scope, ast.Module) else None
        return False

    def _lone(self, node) -> bool:
        """A single ``money``/``by_unit`` amount (or a function of this module returning just one)."""
        if not isinstance(node, ast.Call):
            return False
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if name in LONE_FORMATTERS:
            return True
        if isinstance(func, ast.Name) and func.id in self.scopes.functions:
            returns = [n for fn in self.scopes.functions[func.id] for n in _Scopes._own_nodes(fn)
                       if isinstance(n, ast.Return)]
            return bool(returns) and all(self._lone(r.value) for r in returns)
        return False

    def safe_format_func(self, node) -> bool:
        if isinstance(node, ast.Name) and node.id == ESCAPE:
            return True
        if isinstance(node, ast.Lambda):
            return self.safe(node.body)
        if isinstance(node, ast.Attribute) and node.attr == "get":
            return self._constant_table(node.value) or (isinstance(node.value, ast.Dict) and self.safe(node.value))
        if isinstance(node, ast.Name) and node.id in self.scopes.functions:
            return self._safe_function(node.id)
        return False

    # ----------------------------------------------------------------- the calls
    def element_of(self, call: ast.Call) -> list[str]:
        """The Markdown element(s) a call draws (``[]`` when it is not one)."""
        func = call.func
        if isinstance(func, ast.Attribute) and func.attr in TEXT_ARGS:
            base = func.value
            if isinstance(base, ast.Name) and base.id in NOT_STREAMLIT:
                return []
            if not call.args and not call.keywords:
                return []
            return [func.attr]
        if isinstance(func, ast.IfExp):  # (st.success if ok else st.info)(text)
            return [p.attr for p in (func.body, func.orelse) if isinstance(p, ast.Attribute) and p.attr in TEXT_ARGS]
        if isinstance(func, ast.Subscript) and isinstance(func.value, ast.Dict):  # {"error": st.error}[kind](text)
            return [v.attr for v in func.value.values if isinstance(v, ast.Attribute) and v.attr in TEXT_ARGS]
        if (isinstance(func, ast.Call) and isinstance(func.func, ast.Name) and func.func.id == "getattr"
                and func.args and isinstance(func.args[0], ast.Name) and func.args[0].id == "st"):
            return ["markdown"]  # getattr(st, kind)(text): treated as a Markdown element
        return []

    def check_call(self, call: ast.Call) -> None:
        func = call.func
        if (isinstance(func, ast.Attribute) and func.attr.endswith("Column")
                and isinstance(func.value, ast.Attribute) and func.value.attr == "column_config"):
            for k in call.keywords:  # a column's header tooltip is Markdown (its label is plain text)
                if k.arg == "help" and not self.safe(k.value):
                    self._report(call, func.attr, "help", k.value)
            return
        elements = self.element_of(call)
        if not elements:
            return
        element = elements[0]
        for index, keyword in TEXT_ARGS.get(element, ((0, "body"),)):
            arg = call.args[index] if len(call.args) > index and not isinstance(call.args[index], ast.Starred) \
                else next((k.value for k in call.keywords if k.arg == keyword), None)
            if arg is None:
                continue
            ok = self.safe(arg, calls=False) if element == "badge" else self.safe(arg) or self._lone(arg)
            if not ok:
                self._report(call, element, keyword, arg)
        for k in call.keywords:
            if k.arg == "help" and not self.safe(k.value):
                self._report(call, element, "help", k.value)
        if element in MARKDOWN_OPTIONS:
            fmt = next((k.value for k in call.keywords if k.arg == "format_func"), None)
            if fmt is not None:
                if not self.safe_format_func(fmt):
                    self._report(call, element, "format_func", fmt)
            else:
                options = call.args[1] if len(call.args) > 1 else next(
                    (k.value for k in call.keywords if k.arg == "options"), None)
                if options is not None and not self.safe(options, calls=False) and not self._options_call(options):
                    self._report(call, element, "options", options)

    def _options_call(self, node) -> bool:
        """``list(CONSTANT)``/``sorted(...)``/``tuple(...)`` of constant options."""
        return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("list", "tuple", "sorted") and len(node.args) == 1
                and self.safe(node.args[0], calls=False))

    def _report(self, call, element: str, argument: str, node) -> None:
        self.findings.append(Finding(self.path, call.lineno, self.scopes.enclosing_function_name(call), element,
                                     argument, ast.get_source_segment(self.source, node) or ast.dump(node)))

    def run(self) -> list[Finding]:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call):
                self.check_call(node)
        return self.findings


def check_source(source: str, path: str = "<snippet>") -> list[Finding]:
    return Checker(source, path).run()


def ui_files() -> list[Path]:
    return [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py")), *sorted((ROOT / "ui").glob("*.py"))]


def findings_by_file() -> dict[str, list[Finding]]:
    out = {}
    for path in ui_files():
        rel = path.relative_to(ROOT).as_posix()
        out[rel] = check_source(path.read_text(encoding="utf-8"), rel)
    return out


# --------------------------------------------------------------------------- the checker on planted snippets
PRELUDE = "import streamlit as st\nfrom ui.fmt import literal, num, pct\n"

VIOLATIONS = {
    "f-string": "def f(name):\n    st.markdown(f'**{name}**')",
    "concatenation": "def f(name):\n    st.caption('Hello ' + name)",
    "percent": "def f(name):\n    st.info('Hello %s' % name)",
    "format": "def f(name):\n    st.warning('Hello {}'.format(name))",
    "bare name": "def f(notice):\n    st.info(notice)",
    "attribute": "def f(row):\n    st.error(row.reason)",
    "other call": "def f(x):\n    st.success(str(x))",
    "repr conversion": "def f(name):\n    st.success(f'Saved {literal(name)!r}')",
    "str-compatible spec": "def f(name):\n    st.success(f'Saved {name:>10}')",
    "num with a text pattern": "def f(name):\n    st.caption(num(name, '{} turns'))",
    "help tooltip": "def f(name):\n    st.metric('Rate', '1', help=f'for {name}')",
    "metric value": "def f(v):\n    st.metric('Rate', v)",
    "metric delta": "def f(d):\n    st.metric('Rate', '1', d)",
    "expander label": "def f(title):\n    with st.expander(f'Edit {title}'):\n        pass",
    "tab labels": "def f(a):\n    st.tabs([a, 'other'])",
    "column widget": "def f(cols, name):\n    cols[0].metric(name, '1')",
    "sidebar": "def f(user):\n    st.sidebar.caption(f'Signed in as **{user}**')",
    "page_link label": "def f(name):\n    st.page_link('pages/1_Data.py', label=name)",
    "progress text": "def f(upload):\n    st.progress(0.5, text=f'Reading {upload.name}')",
    "button label": "def f(cid):\n    st.button(f'Open conversation {cid}')",
    "radio options": "def f(values):\n    st.radio('Pick', values)",
    "radio format_func": "def f(names):\n    st.radio('Pick', [1, 2], format_func=lambda i: names[i])",
    "badge with an escape": "def f(x):\n    st.badge(literal(x))",
    "dict dispatch": "def f(kind, text):\n    {'error': st.error, 'info': st.info}[kind](text)",
    "if dispatch": "def f(ok, text):\n    (st.success if ok else st.info)(text)",
    "getattr dispatch": "def f(kind, text):\n    getattr(st, kind)(text)",
    "local bound to data": "def f(row):\n    msg = f'Saved {row.name}'\n    st.success(msg)",
    "one bad binding": "def f(row, ok):\n    msg = 'fine'\n    if ok:\n        msg = row.name\n    st.success(msg)",
    "loop variable": "def f(rows):\n    for text in rows:\n        st.caption(text)",
    "helper returning data": "def label(row):\n    return row.name\ndef f(row):\n    st.caption(label(row))",
    "join of data": "def f(items):\n    st.markdown(', '.join(items))",
    "appended data": "def f(row):\n    parts = ['a']\n    parts.append(row.name)\n    st.caption(' '.join(parts))",
    "item assigned data": "def f(row):\n    parts = ['a']\n    parts[0] = row.name\n    st.caption(' '.join(parts))",
    "lone money in a larger text": "from ui.fmt import money\ndef f(a):\n    st.caption('total ' + money(a))",
    "money (a $ pair is LaTeX)": "from ui.fmt import money\ndef f(a, b):\n    st.caption(f'{money(a)} to {money(b)}')",
    "num with a dollar pattern": "def f(a):\n    st.caption(num(a, '${:,.0f}'))",
    "radio captions": "def f(names):\n    st.radio('Pick', ['a'], captions=[names[0]])",
    "column help": "def f(why):\n    st.column_config.NumberColumn('effort', help=why)",
    "metrics Markdown not listed": "from ui.fmt import harden_markdown\ndef f(x):\n    st.markdown(harden_markdown(x))",
}

SAFE = {
    "constant": "st.markdown('**Hello**')",
    "escaped": "def f(name):\n    st.markdown(f'**{literal(name)}**')",
    "numbers": "def f(n, r, t):\n    st.caption(f'{n:,} conversations, {r:.1%} resolved, since {t:%Y-%m-%d}')",
    "formatters": "def f(r, x):\n    st.metric('Rate', pct(r), help=num(x, '{:.1f} min'))",
    "concatenation": "def f(name):\n    st.caption('Hello ' + literal(name) + '.')",
    "local": "def f(name, ok):\n    msg = f'Saved {literal(name)}' if ok else 'Nothing saved'\n    st.success(msg)",
    "join": "def f(items):\n    st.markdown('\\n'.join(f'- {literal(i)}' for i in items))",
    "helper": "def label(row):\n    return 'Row ' + literal(row.name)\ndef f(row):\n    st.caption(label(row))",
    "constants table": "LABELS = {'a': 'A'}\ndef f(v):\n    st.radio('Pick', ['a'], format_func=LABELS.get)\n    "
                       "st.caption(LABELS[v])",
    "constant options": "def f():\n    options = [c for c in ('intent', 'topic') if c]\n    st.radio('By', options)",
    "escaped options": "def f(values):\n    st.radio('Pick', values, format_func=literal)",
    "badge": "BADGES = {'red': ('Off track', 'red')}\ndef f(s):\n    st.badge(BADGES[s][0])",
    "logger": "import logging\nlogger = logging.getLogger(__name__)\ndef f(x):\n    logger.error(x)",
    "appended escapes": "def f(row):\n    parts = ['a']\n    parts.append(literal(row.name))\n    "
                        "st.caption(' '.join(parts))",
    "lone money": "from ui.fmt import money, by_unit\ndef show(v):\n    return by_unit(v, 'money')\n"
                  "def f(a):\n    st.metric('Cost', money(a))\n    st.metric('Cost', show(a))",
    "escaped money": "from ui.fmt import money\ndef f(a, b):\n"
                     "    st.caption(f'{literal(money(a))} to {literal(money(b))}')",
    "metrics Markdown": "from ui.fmt import harden_markdown\nfrom metrics.improve.review import review_markdown\n"
                        "def f(r):\n    st.markdown(harden_markdown(review_markdown(r)))",
}


@pytest.mark.parametrize("name", sorted(VIOLATIONS))
def test_checker_flags_a_planted_violation(name):
    found = check_source(PRELUDE + VIOLATIONS[name])
    assert found, f"{name}: not flagged"


@pytest.mark.parametrize("name", sorted(SAFE))
def test_checker_accepts_safe_code(name):
    assert check_source(PRELUDE + SAFE[name]) == []


def test_checker_flags_a_violation_planted_in_a_copy_of_a_real_page(tmp_path):
    """A real view with one line changed to interpolate data without the helper is caught (and only that)."""
    source = (ROOT / "ui" / "drill.py").read_text(encoding="utf-8")
    assert check_source(source, "ui/drill.py") == []
    planted = source.replace('st.markdown(f"**{literal(heading)}**")', 'st.markdown(f"**{heading}**")')
    assert planted != source, "ui/drill.py changed: update the planted line"
    target = tmp_path / "drill.py"
    target.write_text(planted, encoding="utf-8")
    found = check_source(target.read_text(encoding="utf-8"), "drill.py")
    assert [(f.function, f.element) for f in found] == [("listing", "markdown")]


# --------------------------------------------------------------------------- the real tree
def test_app_pages_and_ui_escape_every_interpolation():
    found = [str(f) for fs in findings_by_file().values() for f in fs]
    assert found == [], "\n".join(found)


def test_one_escape_helper():
    """``ui.fmt.literal`` is the only Markdown escape in ui/ (auth's ``escape_markdown`` delegates to it)."""
    from ui import fmt

    assert not hasattr(fmt, "plain")
    for path in ui_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel in ("ui/fmt.py", "ui/auth.py"):
            continue
        text = path.read_text(encoding="utf-8")
        assert "md_escape" not in text and "escape_markdown" not in text, rel
        assert not re.search(r"re\.sub\(r[\"']\(\[\\\\", text), f"{rel} escapes Markdown by hand"


def test_no_traceback_element():
    """Tracebacks never reach the page: no ``st.exception`` anywhere in app.py, pages/ and ui/."""
    for path in ui_files():
        assert ".exception(" not in path.read_text(encoding="utf-8").replace("log.exception(", ""), path
