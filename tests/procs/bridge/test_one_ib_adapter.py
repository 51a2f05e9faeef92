"""Guards that ib_async stays behind the bridge's one adapter (procs/bridge/ib, issue 18 part 5).

Every module of procs/bridge is read with `ast` (nothing is imported): an import of ib_async anywhere in it (module
level, inside a function, under `if TYPE_CHECKING:`) outside the adapter package fails, as does an import of one of
the adapter's own modules instead of the package's names, and a read of another object's private attribute (the
API reaching into the session's internals). It must never import the modules it inspects.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
BRIDGE = ROOT / "procs" / "bridge"
ADAPTER = BRIDGE / "ib"


def bridge_modules() -> list[Path]:
    return sorted(p for p in BRIDGE.rglob("*.py") if "__pycache__" not in p.parts)


def in_adapter(path: Path) -> bool:
    return ADAPTER in path.parents


def imports(path: Path) -> set[str]:
    """Dotted names the module imports anywhere in its body (`from a import b` counts as a.b and a)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import (the bridge spells its imports out)"
            base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def touches_ib_async(names: set[str]) -> bool:
    return any(n == "ib_async" or n.startswith("ib_async.") for n in names)


def test_only_the_adapter_imports_ib_async() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in bridge_modules()
        if not in_adapter(p) and touches_ib_async(imports(p))
    ]
    assert offenders == [], f"ib_async imported outside procs/bridge/ib: {offenders}"


def test_the_rule_is_not_vacuous() -> None:
    """The adapter really is where ib_async lives, and most of the bridge is outside it."""
    assert touches_ib_async(imports(ADAPTER / "broker.py"))
    outside = [p for p in bridge_modules() if not in_adapter(p)]
    assert len(outside) >= 15 and all(not touches_ib_async(imports(p)) for p in outside)


def test_the_rest_of_the_bridge_uses_the_adapters_names_not_its_modules() -> None:
    offenders = {
        str(p.relative_to(ROOT)): sorted(n for n in imports(p) if n.startswith("procs.bridge.ib."))
        for p in bridge_modules()
        if not in_adapter(p)
    }
    # `from procs.bridge.ib import IbBroker` reads as procs.bridge.ib.IbBroker: a name, allowed; a module is not
    modules = {p.stem for p in ADAPTER.glob("*.py")}
    bad = {
        where: [n for n in names if n.removeprefix("procs.bridge.ib.").split(".")[0] in modules]
        for where, names in offenders.items()
    }
    assert {k: v for k, v in bad.items() if v} == {}


def private_reads(path: Path) -> list[str]:
    """`x._name` where x is not `self` itself: another object's internals (`self.session._lost`, `s._status`)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            found.append(f"{path.name}:{node.lineno} .{node.attr}")
    return found


def test_the_bridge_outside_the_adapter_reads_no_other_objects_internals() -> None:
    found = [f for p in bridge_modules() if not in_adapter(p) for f in private_reads(p)]
    assert found == []


def test_the_api_never_reaches_for_the_ib_object() -> None:
    tree = ast.parse((BRIDGE / "api.py").read_text())
    ib_reads = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "ib"]
    assert ib_reads == []
