"""Local Sphinx extension: pages generated from the code, so the documentation cannot drift from it.

``.. multifactor-settings::``
    Every key of :data:`multifactor.conf.SPEC`, in its order: a summary table, then one ``setting`` entry per
    key with its type (from :class:`multifactor.conf.MultifactorSettings`), its default and its description.
    The directive's content may add prose to a key (a line holding only the key, then indented reST) and
    override how a default is shown (an indented ``:default:`` line). Warnings, which ``-W`` turns into a
    failed build: a key whose SPEC description is empty, prose for a key SPEC does not have.

``.. multifactor-openapi:: path/to/openapi.json``
    Each path and method of an OpenAPI 3.1 document: summary, description, parameters, request body and
    responses, with ``$ref`` schemas linked to a "Schemas" section rendered once. A missing or unreadable file
    is a warning (the page then says so). With ``:check-urls: module``, every API route of that URLconf
    module must appear in the document, and every documented path must be a route (warnings otherwise).

``.. check:: multifactor.E001`` / ``:check:`multifactor.E001```
    A system check id (a standard-domain object type). At the end of reading, the ids documented with
    ``.. check::`` are compared with the ``id="multifactor.XNNN"`` ids found in the package's source: one
    missing from the documentation, or documented but no longer in the code, is a warning.

``.. setting:: KEY`` / ``:setting:`KEY```
    A settings key (a standard-domain object type), made by ``multifactor-settings``; with ``nitpicky`` a
    ``:setting:`` reference to a key that does not exist fails the build.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

logger = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parents[2] / "multifactor"
# id="multifactor.E003", and the ids chosen in code before an id=f"multifactor.{cid}" (checks.Error, "E001").
CHECK_ID = re.compile(r"""\bid=f?["']multifactor\.([EW]\d{3})["']|\(checks\.(?:Error|Warning), ["']([EW]\d{3})["']\)""")
KEY_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)\s*$")


# -- helpers ---------------------------------------------------------------------------------------------


def _parse(directive: SphinxDirective, lines: list, source: str) -> list[nodes.Node]:
    """Parse generated reST into nodes. A line is a string (attributed to ``source`` for error messages) or a
    ``(line, source, offset)`` tuple that keeps where it was written."""
    content = StringList()
    for number, line in enumerate(lines):
        if isinstance(line, tuple):
            content.append(*line)
        else:
            content.append(line, source, number)
    container = nodes.container()
    nested_parse_with_titles(directive.state, content, container)
    return container.children


def _md(text) -> str:
    """The little Markdown an OpenAPI description uses (inline code, links), as reST, on one line."""
    text = " ".join(str(text).split())
    text = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r"`\1 <\2>`__", text)
    return re.sub(r"(?<!`)`([^`]+)`(?![`_])", lambda m: _literal(m.group(1)), text)


def _literal(text: str) -> str:
    """An inline literal for any text (backquotes cannot appear inside ````...````)."""
    return "``" + text.replace("``", "`\u200b`") + "``" if text else '``""``'


# -- settings --------------------------------------------------------------------------------------------


def _duration(seconds: int) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds // 60} min"
    return ""


def _show_default(value) -> str:
    """The default as Python source, as a site would write it."""
    from django.utils.functional import Promise

    if isinstance(value, Promise):
        return repr(str(value))
    if callable(value):
        return getattr(value, "__name__", "") or repr(value)
    return repr(value)


def _split_extras(directive: SphinxDirective) -> dict[str, tuple[str | None, list[tuple[str, str, int]]]]:
    """The directive's content as {KEY: (default override, [(line, source, offset), ...])}."""
    extras: dict[str, tuple[str | None, list]] = {}
    current = None
    for offset, line in enumerate(directive.content):
        source, lineno = directive.content.info(offset)
        match = KEY_LINE.match(line)
        if match:
            current = match.group(1)
            if current in extras:
                logger.warning("multifactor-settings: %s is described twice", current, location=(source, lineno))
            extras[current] = (None, [])
            continue
        if current is None:
            if line.strip():
                logger.warning(
                    "multifactor-settings: text before the first key: %r", line.strip(), location=(source, lineno)
                )
            continue
        default, body = extras[current]
        stripped = line.strip()
        if stripped.startswith(":default:") and not body:
            extras[current] = (stripped[len(":default:") :].strip(), body)
            continue
        body.append((line[3:] if line.startswith("   ") else line.lstrip(), source, lineno))
    return extras


class SettingsDirective(SphinxDirective):
    has_content = True

    def run(self):
        from multifactor import conf

        types = {f.name: str(f.type) for f in dataclasses.fields(conf.MultifactorSettings)}
        extras = _split_extras(self)
        location = self.get_location()
        for key in extras:
            if key not in conf.SPEC:
                logger.warning(
                    "multifactor-settings: %s is described here but is not a key of multifactor.conf.SPEC",
                    key,
                    location=location,
                )

        summary = [".. list-table::", "   :header-rows: 1", "   :widths: 26 26 48", "", "   * - Key", "     - Default",
                   "     - Summary (from ``multifactor.conf.SPEC``)"]  # fmt: skip
        entries: list[str] = []
        for key, (default, _valid, description) in conf.SPEC.items():
            description = (description or "").strip()
            if not description:
                logger.warning(
                    "multifactor-settings: MULTIFACTOR[%r] has no description in multifactor.conf.SPEC",
                    key,
                    location=location,
                )
            override, body = extras.get(key, (None, []))
            value = default() if callable(default) else default
            shown = override or _literal(_show_default(value))
            if isinstance(value, int) and not isinstance(value, bool) and "second" in description:
                human = _duration(value)
                if human and not override:
                    shown += f" ({human})"
            summary += [f"   * - :setting:`{key}`", f"     - {shown}", f"     - {description or '(none)'}"]
            entries += [f".. setting:: {key}", ""]
            entries += [f"   :Type: {_literal(types.get(key, '?'))}", f"   :Default: {shown}", ""]
            summary_text = description[:1].upper() + description[1:] if description else ""
            if body:
                entries += [f"   *{summary_text}.*" if summary_text else "", ""]
            elif summary_text:
                entries += [f"   {summary_text}.", ""]
            entries += [(f"   {line}" if line.strip() else "", src, lineno) for line, src, lineno in body]
            entries.append("")
        result = _parse(self, summary + [""], "multifactor.conf.SPEC (summary)")
        result += _parse(self, entries, "multifactor.conf.SPEC (entries)")
        return result


# -- system checks ---------------------------------------------------------------------------------------


def check_ids_in_code() -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        for direct, chosen in CHECK_ID.findall(path.read_text(encoding="utf-8")):
            found.add(f"multifactor.{direct or chosen}")
    return found


def _compare_checks(app, env):
    documented = {name for (objtype, name) in env.get_domain("std").objects if objtype == "check"}
    if not documented:
        return  # a partial build (or a project without the checks page)
    in_code = check_ids_in_code()
    for missing in sorted(in_code - documented):
        logger.warning("system check %s is raised in multifactor/ but has no '.. check::' entry", missing)
    for stale in sorted(documented - in_code):
        logger.warning("system check %s is documented but multifactor/ no longer raises it", stale)


# -- OpenAPI ---------------------------------------------------------------------------------------------

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _route_key(path: str) -> str:
    """A path with every parameter written ``{}``, no leading ``/``, no ``api/v1/`` prefix: comparable."""
    path = re.sub(r"<(?:[^:>]+:)?[^>]+>", "{}", path)
    path = re.sub(r"\{[^}]*\}", "{}", path)
    path = path.lstrip("/")
    return path.removeprefix("api/v1/").rstrip("/")


class OpenApiRenderer:
    def __init__(self, spec: dict, warn):
        self.spec, self.warn = spec, warn
        self.schemas = (spec.get("components") or {}).get("schemas") or {}

    def ref_name(self, ref: str) -> str | None:
        prefix = "#/components/schemas/"
        if isinstance(ref, str) and ref.startswith(prefix) and ref[len(prefix) :] in self.schemas:
            return ref[len(prefix) :]
        self.warn(f"unresolvable $ref {ref!r}")
        return None

    def resolve(self, obj, kind: str):
        """Follow a ``$ref`` into components/<kind> (parameters, requestBodies, responses)."""
        seen = 0
        while isinstance(obj, dict) and "$ref" in obj and seen < 10:
            ref = obj["$ref"]
            prefix = f"#/components/{kind}/"
            target = ((self.spec.get("components") or {}).get(kind) or {}).get(ref[len(prefix) :])
            if not ref.startswith(prefix) or target is None:
                self.warn(f"unresolvable $ref {ref!r}")
                return {}
            obj, seen = target, seen + 1
        return obj if isinstance(obj, dict) else {}

    # A schema becomes a short type expression, plus (for objects) a bullet list of properties.
    def type_of(self, schema) -> str:
        if not isinstance(schema, dict):
            return "any"
        if "$ref" in schema:
            name = self.ref_name(schema["$ref"])
            return f":ref:`{name} <openapi-schema-{name.lower()}>`" if name else "?"
        if "const" in schema:
            return _literal(json.dumps(schema["const"]))
        if "enum" in schema:
            return " | ".join(_literal(json.dumps(v)) for v in schema["enum"])
        for combiner, joiner in (("oneOf", " | "), ("anyOf", " | "), ("allOf", " & ")):
            if combiner in schema:
                return joiner.join(self.type_of(s) for s in schema[combiner])
        kind = schema.get("type")
        kinds = kind if isinstance(kind, list) else [kind] if kind else []
        shown = []
        for k in kinds:
            if k == "array":
                shown.append(f"array of {self.type_of(schema.get('items'))}")
            elif k == "string" and schema.get("format"):
                shown.append(f"string ({schema['format']})")
            else:
                shown.append(k)
        if not shown:
            shown = ["object"] if "properties" in schema else ["any"]
        return " | ".join(shown)

    def describe(self, schema, indent: str = "") -> list[str]:
        """Lines of reST describing ``schema`` (its type, then its properties as a bullet list)."""
        lines = []
        if not isinstance(schema, dict):
            return [f"{indent}any"]
        text = self.type_of(schema)
        if schema.get("description") and "$ref" not in schema:
            text += f": {_md(schema['description'])}"
        lines.append(f"{indent}{text}")
        props = schema.get("properties") if "$ref" not in schema else None
        if props:
            required = set(schema.get("required") or ())
            lines.append("")
            for name, prop in props.items():
                mark = "" if name in required else " (optional)"
                first, *rest = self.describe(prop, indent + "  ")
                lines.append(f"{indent}- ``{name}``{mark}: {first.strip()}")
                lines += [f"  {line}" if line.strip() else "" for line in rest]
            lines.append("")
        elif isinstance(schema.get("items"), dict) and schema["items"].get("properties"):
            lines += ["", *self.describe(schema["items"], indent)[1:]]
        return lines

    def content(self, content: dict, indent: str) -> list[str]:
        lines = []
        for media, body in (content or {}).items():
            schema_lines = self.describe((body or {}).get("schema"), "")
            lines.append(f"{indent}- ``{media}``: {schema_lines[0]}")
            lines += [f"{indent}  {line}" if line.strip() else "" for line in schema_lines[1:]]
            example = (body or {}).get("example")
            if example is not None:
                lines += ["", f"{indent}  Example::", ""]
                lines += [f"{indent}     {line}" for line in json.dumps(example, indent=2).splitlines()]
                lines.append("")
        return lines

    def operation(self, path: str, method: str, op: dict, inherited_params: list) -> list[str]:
        anchor = "openapi-" + re.sub(r"[^a-z0-9]+", "-", f"{method} {path}".lower()).strip("-")
        title = f"{method.upper()} {path}"
        lines = [f".. _{anchor}:", "", title, "~" * len(title), ""]
        if op.get("summary"):
            lines += [_md(op["summary"]), ""]
        else:
            self.warn(f"{title} has no summary")
        if op.get("description"):
            lines += [_md(op["description"]), ""]
        if op.get("security") == []:
            lines += ["No sign-in needed.", ""]
        params = [self.resolve(p, "parameters") for p in [*inherited_params, *(op.get("parameters") or [])]]
        if params:
            lines += [":Parameters:", ""]
            for p in params:
                mark = "" if p.get("required") else " (optional)"
                desc = _md(p.get("description", ""))
                where = p.get("in", "?")
                lines.append(f"   - ``{p.get('name', '?')}`` ({where}){mark}: {self.type_of(p.get('schema'))}"
                             + (f". {desc}" if desc else ""))  # fmt: skip
            lines.append("")
        body = self.resolve(op.get("requestBody"), "requestBodies") if op.get("requestBody") else None
        if body:
            mark = "" if body.get("required") else " (optional)"
            lines += [f":Request body{mark}:", ""]
            if body.get("description"):
                lines += [f"   {_md(body['description'])}", ""]
            lines += self.content(body.get("content"), "   ")
            lines.append("")
        responses = op.get("responses") or {}
        if not responses:
            self.warn(f"{title} has no responses")
        if responses:
            lines += [":Responses:", ""]
            for status, response in responses.items():
                response = self.resolve(response, "responses")
                desc = _md(response.get("description", ""))
                lines.append(f"   - **{status}**" + (f": {desc}" if desc else ""))
                headers = response.get("headers") or {}
                if headers:
                    lines.append(f"     (headers: {', '.join(f'``{h}``' for h in headers)})")
                inner = self.content(response.get("content"), "     ")
                if inner:
                    lines += ["", *inner]
                lines.append("")
        return lines

    def render(self) -> list[str]:
        lines = []
        info = self.spec.get("info") or {}
        version = str(self.spec.get("openapi", ""))
        if not version.startswith("3.1"):
            self.warn(f"openapi is {version!r}; this page renders OpenAPI 3.1 documents")
        if info.get("description"):
            for paragraph in str(info["description"]).split("\n\n"):
                lines += [_md(paragraph), ""]
        servers = [s.get("url") for s in self.spec.get("servers") or [] if isinstance(s, dict)]
        if servers:
            lines += ["Paths are relative to " + ", ".join(_literal(s) for s in servers if s) + ".", ""]
        paths = self.spec.get("paths") or {}
        if not paths:
            self.warn("the document has no paths")
        groups: dict[str, list] = {t.get("name"): [] for t in self.spec.get("tags") or [] if isinstance(t, dict)}
        for path, item in paths.items():
            if not isinstance(item, dict):
                continue
            for method in METHODS:
                if method in item:
                    tag = (item[method].get("tags") or ["other"])[0]
                    groups.setdefault(tag, []).append((path, method, item))
        about = {t.get("name"): t.get("description") for t in self.spec.get("tags") or [] if isinstance(t, dict)}
        for tag, operations in groups.items():
            if not operations:
                continue
            title = str(tag)[:1].upper() + str(tag)[1:]
            lines += [title, "-" * len(title), ""]
            if about.get(tag):
                lines += [_md(about[tag]), ""]
            for path, method, item in operations:
                lines += self.operation(path, method, item[method], item.get("parameters") or [])
        if self.schemas:
            lines += ["Schemas", "-------", ""]
            for name, schema in self.schemas.items():
                lines += [f".. _openapi-schema-{name.lower()}:", "", f"``{name}``", "", *self.describe(schema, ""), ""]
        return lines


class OpenApiDirective(SphinxDirective):
    required_arguments = 1
    option_spec = {"check-urls": directives.unchanged}

    def run(self):
        location = self.get_location()
        rel, path = self.env.relfn2path(self.arguments[0])
        self.env.note_dependency(rel)

        def warn(message):
            logger.warning("multifactor-openapi: %s: %s", self.arguments[0], message, location=location)

        try:
            spec = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            warn("the file does not exist")
            notice = f".. warning:: {_literal(self.arguments[0])} was missing when this page was built."
            return _parse(self, [notice, ""], "multifactor-openapi")
        except (OSError, ValueError) as exc:
            warn(f"cannot be read: {exc}")
            return []
        if not isinstance(spec, dict):
            warn("is not a JSON object")
            return []
        if "check-urls" in self.options:
            self.compare_routes(spec, self.options["check-urls"] or "multifactor.urls", warn)
        return _parse(self, OpenApiRenderer(spec, warn).render(), str(path))

    @staticmethod
    def compare_routes(spec, module, warn):
        from importlib import import_module

        from django.urls import URLPattern

        documented = {_route_key(p) for p in spec.get("paths") or {}}
        routes = set()
        for pattern in import_module(module).urlpatterns:
            if isinstance(pattern, URLPattern) and str(pattern.pattern).startswith("api/v1/"):
                routes.add(_route_key(str(pattern.pattern)))
        for missing in sorted(routes - documented):
            warn(f"the route api/v1/{missing} of {module} is not in the document")
        for extra in sorted(documented - routes):
            warn(f"the documented path {extra!r} is not a route of {module}")


def setup(app):
    app.add_object_type("setting", "setting", indextemplate="pair: %s; MULTIFACTOR setting")
    app.add_object_type("check", "check", indextemplate="pair: %s; system check")
    app.add_directive("multifactor-settings", SettingsDirective)
    app.add_directive("multifactor-openapi", OpenApiDirective)
    app.connect("env-check-consistency", _compare_checks)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
