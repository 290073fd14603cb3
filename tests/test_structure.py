"""The import structure of ``multifactor/``: no import circle, and no module importing one of a higher layer.

Every import counts, also those inside functions (a deferred import is still a dependency), read from the
source with :mod:`ast`, so the test needs no import side effects and names the offending line.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "multifactor"

# Bottom to top; a module may import its own layer and those below. The first matching prefix wins.
LAYERS = [
    ["conf", "errors", "signals", "responses", "rules", "backends", "compat.checks", "templatetags", "compat"],
    ["crypto", "session", "transports", "compat.settings"],
    ["models"],
    ["revocation", "audit", "throttle", "trust"],
    ["flows", "policy", "factors.base"],
    ["factors.fallback", "factors.fido2", "factors.recovery", "factors.totp", "compat.common", "decorators"],
    ["factors", "middleware", "trust.middleware", "mixins", "compat.mixins"],
    ["api", "openapi", "views", "trust.views", "trust.api", "admin", "management"],
    ["urls", "checks", "trust.checks", "apps", "common", "app_settings"],
]
# Factor subpackages' HTML and JSON modules belong to the layer of ``views`` and ``api``.
HTML_JSON = ("views", "api")


def module_name(path):
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {
    module_name(p): p for p in sorted(ROOT.rglob("*.py")) if "migrations" not in p.parts and "tests" not in p.parts
}


def imports(name):
    """(line, imported module) for every import of a module of the package in ``name``'s source."""
    path = MODULES[name]
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for target in targets:
            if target.startswith("multifactor") and target not in MODULES:
                raise AssertionError(f"{name} line {node.lineno} imports {target}, which does not exist")
            if target in MODULES and target != name:
                yield node.lineno, target


def layer(name):
    short = name.removeprefix("multifactor").lstrip(".")
    if short.startswith("factors.") and short.rsplit(".", 1)[-1] in HTML_JSON:
        return LAYERS.index(next(lay for lay in LAYERS if "api" in lay))
    best = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if short == prefix or short.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (index, len(prefix))
    if best is None:
        raise AssertionError(f"{name} has no layer in tests/test_structure.py LAYERS")
    return best[0]


GRAPH = {name: sorted(set(imports(name))) for name in MODULES if name != "multifactor"}


@pytest.mark.parametrize("name", sorted(GRAPH))
def test_no_module_imports_a_higher_layer(name):
    upward = [f"line {line}: {target}" for line, target in GRAPH[name] if layer(target) > layer(name)]
    assert not upward, f"{name} (layer {layer(name)}) imports from above: {upward}"


def test_no_import_circle():
    edges = {name: {target for _, target in deps} for name, deps in GRAPH.items()}
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"


def test_every_module_has_a_layer():
    for name in GRAPH:
        layer(name)
