"""The one way the portal reads a YAML or JSON document a person typed: bounded in size, aliases and depth.

Every form that takes YAML or JSON (application edit, patch and create, every kind's YAML form, instance
labels) parses through `parse()`, so a hostile document is refused here, quickly, before anything reaches
Argo CD or a preview is drawn:

- over `DOCUMENT_MAX_BYTES` (default 1 MiB): refused before parsing;
- nested deeper than `DOCUMENT_MAX_DEPTH` (default 100): refused while parsing, at the first level too deep,
  so a 100,000-deep document costs a hundred levels of work and never reaches Python's recursion limit;
- YAML aliases (`*name`) used more than `YAML_MAX_ALIASES` times (default 100), or adding more than
  `YAML_MAX_ALIAS_NODES` nodes once expanded (default 10,000): a "billion laughs" document of a few hundred
  bytes is cheap to parse (aliases share one object) but expands to millions of nodes wherever it is
  written out again — the diff preview, the JSON sent to Argo CD, the audit event.

PyYAML has no limit on alias expansion or depth (its composer recurses once per level), and no maintained
Python library adds one, so the guard is a small `SafeLoader` subclass that counts while composing; JSON
has no aliases, and its depth is checked by a linear scan before `json.loads` (whose C scanner recurses).
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from django.conf import settings
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode


class DocumentError(ValueError):
    """The document cannot be accepted; `str(exc)` is a message for the person who typed it.

    `refused` is true when a bound refused it (size, depth, aliases) rather than a mistake in its syntax: such a
    document is as likely a probe as a slip, so the views audit it.
    """

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


# The ValidationError code of a refusal, so a view can tell it from a syntax error among a form's errors.
REFUSED = "document_refused"


class Refusal(str):
    """A refusal's message where messages travel as plain strings (the kinds' YAML form)."""


def refusal(form: Any) -> str:
    """The message of a document a bound refused among a bound form's errors, or ""."""
    for errors in form.errors.as_data().values():
        for error in errors:
            if error.code == REFUSED:
                return error.messages[0]
    return ""


def _limit(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def parse(text: str, fmt: str = "yaml") -> Any:
    """YAML (the default) or JSON text into data, or DocumentError naming the problem and where it is."""
    _check_size(text)
    return parse_json(text) if fmt == "json" else parse_yaml(text)


def _check_size(text: str) -> None:
    limit = _limit("DOCUMENT_MAX_BYTES", 1 << 20)
    size = len(text.encode("utf-8", "surrogatepass")) if len(text) * 4 > limit else len(text)
    if size > limit:
        raise DocumentError(
            f"The document is {size:,} bytes; the portal accepts at most {limit:,}. "
            "Keep large content (such as Helm values) in the repository instead.",
            refused=True,
        )


def _too_deep(limit: int, where: str) -> DocumentError:
    return DocumentError(
        f"The document nests deeper than {limit} levels{where}; an Argo CD object is never that deep.", refused=True
    )


# A JSON string (escapes included) or a bracket; anything else cannot change the nesting depth.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]+|\\.)*"|[\[\]{}]')


def parse_json(text: str) -> Any:
    _check_size(text)
    limit, depth = _limit("DOCUMENT_MAX_DEPTH", 100), 0
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > limit:
                at = match.start()
                line, column = text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)
                raise _too_deep(limit, f" (at line {line}, column {column})")
        elif token in "]}":
            depth -= 1
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DocumentError(f"Invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
    except ValueError as exc:  # e.g. an integer longer than Python converts
        raise DocumentError(f"Invalid JSON: {_reason(exc)}") from exc


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses, while composing, nesting and alias expansion beyond the portal's bounds."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.max_depth = _limit("DOCUMENT_MAX_DEPTH", 100)
        self.max_aliases = _limit("YAML_MAX_ALIASES", 100)
        self.max_alias_nodes = _limit("YAML_MAX_ALIAS_NODES", 10_000)
        self.depth = 0
        self.aliases = 0
        self.alias_nodes = 0
        # id(node) -> (nodes in its expanded subtree, its height); nodes stay alive until the document ends.
        self.measures: dict[int, tuple[int, int]] = {}

    def fetch_flow_collection_start(self, token_class: Any) -> None:
        # The scanner keeps every open `[`/`{` as a possible key and rescans them all per token, so a deep
        # flow collection is refused here, at the first level too deep, before that cost grows.
        if self.flow_level >= self.max_depth:
            raise _too_deep(self.max_depth, self._where(self))
        super().fetch_flow_collection_start(token_class)

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            return self._alias(parent, index, event)
        self.depth += 1
        if self.depth > self.max_depth:
            raise _too_deep(self.max_depth, self._where(event))
        try:
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        self._measure(node)
        return node

    def _alias(self, parent: Node | None, index: Any, event: AliasEvent) -> Node:
        self.aliases += 1
        if self.aliases > self.max_aliases:
            raise DocumentError(
                f"The YAML uses more than {self.max_aliases} aliases (*name){self._where(event)}; "
                "write the repeated values out instead.",
                refused=True,
            )
        node = super().compose_node(parent, index)  # an undefined alias raises ComposerError here
        size, height = self.measures.get(id(node), (1, 1))
        self.alias_nodes += size
        if self.alias_nodes > self.max_alias_nodes:
            raise DocumentError(
                f"The YAML's aliases (*name) expand to more than {self.max_alias_nodes:,} values"
                f"{self._where(event)}; write the repeated values out instead.",
                refused=True,
            )
        if self.depth + height > self.max_depth:
            raise _too_deep(self.max_depth, self._where(event))
        return node

    def _measure(self, node: Node) -> None:
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = node.value
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        size, height = 1, 1
        for child in children:
            s, h = self.measures.get(id(child), (1, 1))
            size, height = size + s, max(height, h + 1)
        self.measures[id(node)] = (size, height)

    @staticmethod
    def _where(event: Any) -> str:
        mark = event.get_mark() if isinstance(event, yaml.SafeLoader) else getattr(event, "start_mark", None)
        return f" (at line {mark.line + 1}, column {mark.column + 1})" if mark else ""


def _reason(exc: ValueError) -> str:
    # Python's own advice after the semicolon (sys.set_int_max_str_digits…) is not for the person typing.
    return str(exc).split(";")[0]


# Everything parsed here is sent to Argo CD as JSON, so YAML's extra types are not made: a date stays the text it
# was (as kubectl reads it), and binary values and sets, which JSON cannot carry, are refused with a message.
_BoundedLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_BoundedLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


def _not_json(loader: _BoundedLoader, node: Node) -> None:
    kind = node.tag.rsplit(":", 1)[-1]
    raise yaml.constructor.ConstructorError(None, None, f"{kind} values cannot be sent to Argo CD", node.start_mark)


for _tag in ("binary", "set"):
    _BoundedLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _not_json)


def parse_yaml(text: str) -> Any:
    _check_size(text)
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise DocumentError(f"Invalid YAML{where}: {getattr(exc, 'problem', None) or exc}") from exc
    except ValueError as exc:  # e.g. an integer longer than Python converts
        if isinstance(exc, DocumentError):
            raise
        raise DocumentError(f"Invalid YAML: {_reason(exc)}") from exc
    finally:
        loader.dispose()
