"""The layers stay honest: what each part of the package may import, and who builds a Worker.

Read from the source with ``ast`` (every import, at the top or inside a
function), so a shortcut taken in a hurry fails here rather than in review.
docs/ARCHITECTURE.md describes the layers these rules keep.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "ghubai_tray"

# Third-party libraries that speak to the network: only the adapters may use them.
NETWORK = {"httpx", "aiohttp", "pysignalr", "orjson", "truststore", "websockets"}
# Project modules that speak to the network: the desktop may not reach them.
NETWORK_MODULES = {"ghubai_tray.adapters.hub", "ghubai_tray.adapters.ollama",
                   "ghubai_tray.adapters.local_server", "ghubai_tray.adapters.openai_server",
                   "ghubai_tray.adapters.tls"}
# Which project layers each layer may import (a layer may always import itself).
ALLOWED = {
    "core": set(),
    "adapters": {"core"},
    "worker": {"core", "adapters"},
    "desktop": {"core", "adapters"},
    "root": {"core", "adapters", "worker", "desktop", "root"},
}
# Import names of the distributions pyproject.toml declares.
DISTRIBUTIONS = {"pillow": "PIL", "pygobject": "gi", "tomli-w": "tomli_w",
                 "python-xlib": "Xlib", "pynacl": "nacl",
                 "nvidia-ml-py": "pynvml", "opentelemetry-sdk": "opentelemetry",
                 "opentelemetry-exporter-otlp-proto-http": "opentelemetry",
                 "opentelemetry-instrumentation-httpx": "opentelemetry",
                 "opentelemetry-instrumentation-logging": "opentelemetry"}
ROOT_MODULES = {"__init__", "__main__", "cli", "app", "doctor"}


def layer_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else "root"


def module_of(path: Path) -> str:
    return ".".join(("ghubai_tray", *path.relative_to(PACKAGE).with_suffix("").parts))


def imports_of(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            # ``from ghubai_tray.core import texts`` imports ghubai_tray.core.texts
            names.extend(f"{node.module}.{alias.name}" for alias in node.names
                         if node.module.startswith("ghubai_tray"))
    return names


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_package_has_the_four_layers_and_the_root() -> None:
    assert {layer_of(p) for p in SOURCES} == set(ALLOWED)
    assert {p.stem for p in SOURCES if layer_of(p) == "root"} == ROOT_MODULES


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_module_imports_only_what_its_layer_may(path: Path) -> None:
    layer = layer_of(path)
    problems = []
    for name in imports_of(path):
        top = name.split(".")[0]
        if top == "ghubai_tray":
            parts = name.split(".")
            target = parts[1] if len(parts) > 1 else "root"
            target = target if target in ALLOWED else "root"  # ghubai_tray.cli, __version__
            if target == "root" and name in ("ghubai_tray", "ghubai_tray.__version__"):
                continue  # the version is everyone's
            if target != layer and target not in ALLOWED[layer]:
                problems.append(f"{name} (the {layer} layer may not import the {target} layer)")
            if layer == "desktop" and any(name.startswith(m) for m in NETWORK_MODULES):
                problems.append(f"{name} (the desktop holds no network code)")
        elif top in NETWORK and layer != "adapters":
            problems.append(f"{name} (only the adapters speak to the network)")
        elif layer == "core" and top not in sys.stdlib_module_names:
            problems.append(f"{name} (the core is pure: the standard library only)")
    assert not problems, f"{path.relative_to(ROOT)} imports " + "; ".join(problems)


def test_every_third_party_import_is_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = set()
    extras = project["optional-dependencies"]
    for requirement in [*project["dependencies"], *extras["menu"], *extras["otel"]]:
        name = re.split(r"[<>=;\[ ]", requirement, maxsplit=1)[0].lower()
        declared.add(DISTRIBUTIONS.get(name, name.replace("-", "_")))
    used = {name.split(".")[0] for p in SOURCES for name in imports_of(p)}
    third_party = {n for n in used if n not in sys.stdlib_module_names and n != "ghubai_tray"}
    assert third_party - declared == set(), "imported but not in pyproject.toml"


def test_only_the_composition_root_builds_a_worker() -> None:
    builders = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else (
                    func.attr if isinstance(func, ast.Attribute) else "")
                if name == "Worker":
                    builders.append(module_of(path))
    assert builders == ["ghubai_tray.app"]


def test_every_document_the_code_names_is_in_the_repository() -> None:
    named = set()
    for path in SOURCES:
        named |= {(path, m) for m in re.findall(r"[\w/]+\.md\b", path.read_text())}
    missing = [f"{p.relative_to(ROOT)} names {doc}" for p, doc in named
               if not (ROOT / doc).is_file()]
    assert not missing


def test_no_class_over_300_lines_and_no_function_over_80() -> None:
    too_long = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                limit = 300 if isinstance(node, ast.ClassDef) else 80
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > limit:
                    too_long.append(f"{module_of(path)}.{node.name}: {length} lines")
    assert not too_long
