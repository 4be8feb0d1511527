"""The layout rules of the package, checked on the source: the CLI convention (painface/cli.py), the
layers (DESIGN.md: face/ and subjects/ know nothing of the model; model/ nothing of rendering or
serving), and that ``painface --help`` imports no command or heavy module."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from painface.cli import COMMANDS, GROUPS, main, module_of

ROOT = Path(__file__).resolve().parent.parent / "painface"
HEAVY = ("torch", "numpy", "scipy", "matplotlib", "numba", "pandas")


def _imports_after(code: str) -> list[str]:
    """Module names imported by a fresh interpreter after running ``code``."""
    probe = f"import sys\n{code}\nimport json; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=ROOT.parent).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_root_help_imports_no_command_and_nothing_heavy():
    mods = _imports_after("import painface.cli as c\nc.build_parser(['--help'])")
    assert not [m for m in mods if m.split(".")[0] in HEAVY]
    assert [m for m in mods if m.startswith("painface")] == ["painface", "painface.cli", "painface.errors"]


def test_command_modules_import_nothing_heavy_until_they_run():
    code = "\n".join(f"import {module_of(name)}" for name in COMMANDS)
    mods = _imports_after(code)
    assert not [m for m in mods if m.split(".")[0] in HEAVY]
    domain = [m for m in mods if m.startswith("painface.") and not m.startswith("painface.commands")
              and m not in ("painface.cli", "painface.errors")]
    assert domain == []


def test_every_command_has_a_module_with_configure_and_run_and_a_group():
    files = {p.stem for p in (ROOT / "commands").glob("*.py")} - {"__init__"}
    assert files == {module_of(n).rsplit(".", 1)[1] for n in COMMANDS}  # no orphan, no missing module
    for name, (group, help_text) in COMMANDS.items():
        tree = ast.parse((ROOT / "commands" / f"{module_of(name).rsplit('.', 1)[1]}.py").read_text())
        funcs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert {"configure", "run"} <= funcs, name
        assert group in GROUPS and help_text


def test_root_help_lists_every_command_by_group(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "synthesizes and assesses facial expressions of pain" in text
    for name in COMMANDS:
        assert f"\n  {name} " in text


def test_each_command_help_works(capsys):
    for name in ("generate", "train-fsq", "synth"):
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0
        assert f"usage: painface {name}" in capsys.readouterr().out


# --- layers ------------------------------------------------------------------------------------
FORBIDDEN = {
    # package: what it must not import (prefixes)
    "face": ("painface.model", "painface.train", "painface.express", "painface.stream", "painface.serve",
             "painface.evaluate", "painface.baselines", "painface.data", "painface.subjects", "painface.commands",
             "painface.cli"),
    "subjects": ("painface.model", "painface.train", "painface.express", "painface.stream", "painface.serve",
                 "painface.evaluate", "painface.baselines", "painface.commands", "painface.cli"),
    "data": ("painface.model", "painface.train", "painface.express", "painface.stream", "painface.serve",
             "painface.evaluate", "painface.baselines", "painface.commands", "painface.cli"),
    "model": ("painface.face.render", "painface.face.video", "painface.face.head", "painface.face.rig",
              "painface.face.mesh", "painface.face.export", "painface.serve", "painface.stream",
              "painface.express", "painface.train", "painface.evaluate", "painface.baselines", "painface.data",
              "painface.commands", "painface.cli"),
}
"""What each lower layer must not import, at any depth of its files (also imports inside functions)."""


def _is_main_block(node: ast.AST) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def _painface_imports(path: Path, skip_main: bool = False) -> list[tuple[int, str]]:
    """(line, module) of every painface import in ``path``; ``skip_main``: not those under
    ``if __name__ == "__main__":`` (a script entry point such as ``torchrun -m painface.train``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if skip_main:
        tree.body = [n for n in tree.body if not _is_main_block(n)]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names if node.module == "painface"]
    return [(n, m) for n, m in out if m.startswith("painface")]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_lower_layers_do_not_import_higher_ones(package):
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, mod in _painface_imports(path):
            if any(mod == f or mod.startswith(f + ".") for f in FORBIDDEN[package]):
                bad.append(f"{path.relative_to(ROOT.parent)}:{line} imports {mod}")
    assert bad == []


def test_the_layer_check_sees_an_import_inside_a_function(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("def f():\n    from painface.model.edm import Denoiser\n")
    assert _painface_imports(f) == [(2, "painface.model.edm")]


def test_no_module_imports_from_a_command_module():
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        if path.parent.name == "commands" or path.name == "cli.py" and path.parent == ROOT:
            continue
        bad += [f"{path.relative_to(ROOT.parent)}:{n} imports {m}" for n, m in _painface_imports(path, skip_main=True)
                if m.startswith("painface.commands") or m == "painface.cli"]
    assert bad == []
