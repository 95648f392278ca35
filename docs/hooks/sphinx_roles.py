"""A griffe extension for the API reference: Sphinx roles in docstrings become links.

neurosim's docstrings cross-reference with Sphinx roles (``:func:`train```,
``:class:`~neurosim.errors.ConfigError```), which mkdocstrings would print as they
are. This extension, loaded by mkdocstrings (``extensions`` in ``mkdocs.yml``),
rewrites each role once the package is loaded into an optional autorefs
cross-reference: a link where the target is rendered in the site, plain code where it
is not. Targets are resolved as written, then relative to the docstring's class and
module, then to the ``neurosim`` package; ``~`` shows the last name only.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(func|class|meth|mod|data|attr|exc|obj|const):`(~?)([^`]+?)`")


def _resolve(collection: Any, target: str, obj: Any) -> str | None:
    """The canonical path of ``target`` as seen from ``obj``, or None when it is not in the package."""
    scopes = []
    scope = obj
    while scope is not None:
        scopes.append(scope.path + ".")
        scope = scope.parent
    for prefix in ("", *scopes, "neurosim."):
        path = prefix + target
        try:
            found = collection[path]
        except (KeyError, ValueError, AttributeError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            continue
        try:
            return found.canonical_path if not found.is_alias else found.final_target.path
        except (griffe.AliasResolutionError, griffe.CyclicAliasError):
            return path
    return None


class SphinxRoles(griffe.Extension):
    """Rewrite ``:role:`target``` in every docstring of the package (see the module docstring)."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        collection = loader.modules_collection
        for obj in _walk(pkg):
            if obj.docstring is None:
                continue

            def link(match: re.Match, obj: Any = obj) -> str:
                short, target = match.group(2) == "~", match.group(3).strip()
                title = target.rsplit(".", 1)[-1] if short else target
                if match.group(1) in ("func", "meth"):
                    title += "()"
                resolved = _resolve(collection, target, obj)
                code = f"<code>{html.escape(title)}</code>"
                if resolved is None:
                    return code
                return f'<autoref identifier="{html.escape(resolved)}" optional>{code}</autoref>'

            obj.docstring.value = ROLE.sub(link, obj.docstring.value)


def _walk(obj: Any) -> Any:
    yield obj
    for member in obj.members.values():
        if member.is_alias:
            continue
        yield from _walk(member)
