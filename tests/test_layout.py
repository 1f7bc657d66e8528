"""The package's layout claim, checked against the code: every import of a package module points
down the list in pyimagesearch/__init__.py, every module is listed, and parsing the command line
imports no backend."""
import ast
import os
import subprocess
import sys

import pyimagesearch

PACKAGE = os.path.dirname(os.path.abspath(pyimagesearch.__file__))
ROOT = os.path.dirname(PACKAGE)


def listed_order(docstring):
    """Module names in the order the package docstring lists them (one per indented line)."""
    names = []
    for line in docstring.splitlines():
        if line.startswith("  ") and not line.startswith("    ") and line.split():
            names.append(line.split()[0])
    return names


def package_imports(path):
    """Names of the package modules that the file at `path` imports, anywhere in it."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "pyimagesearch":
                imported.update(alias.name for alias in node.names)
            elif node.module.startswith("pyimagesearch."):
                imported.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[1] for alias in node.names
                            if alias.name.startswith("pyimagesearch."))
    return imported


def modules():
    return sorted(name[:-3] for name in os.listdir(PACKAGE)
                  if name.endswith(".py") and name != "__init__.py")


def upward_imports(order, imports_of):
    """(importer, imported) pairs where the imported module is not below the importer."""
    position = {name: index for index, name in enumerate(order)}
    return sorted((importer, imported) for importer, imported_names in imports_of.items()
                  for imported in imported_names
                  if imported in position and position[imported] <= position[importer])


def test_every_module_is_listed_once():
    order = listed_order(pyimagesearch.__doc__)
    assert len(order) == len(set(order))
    assert sorted(order) == modules()


def test_every_import_points_down_the_list():
    order = listed_order(pyimagesearch.__doc__)
    imports_of = {name: package_imports(os.path.join(PACKAGE, f"{name}.py"))
                  for name in modules()}
    assert upward_imports(order, imports_of) == []


def test_the_check_sees_an_upward_import():
    order = ["cli", "training", "errors"]
    assert upward_imports(order, {"cli": {"training"}, "training": {"errors"},
                                  "errors": set()}) == []
    assert upward_imports(order, {"cli": set(), "training": {"errors"},
                                  "errors": {"training"}}) == [("errors", "training")]
    assert package_imports(os.path.join(PACKAGE, "cli.py")) >= {"config", "training"}


def test_parsing_the_command_line_imports_no_backend():
    """--help and usage errors come before Keras: only numpy and the light floors load."""
    probe = ("import sys, label_smoothing_loss\n"
             "code = label_smoothing_loss.main(['--smoothing', '2'])\n"
             "heavy = sorted(name for name in ('keras', 'tensorflow', 'jax', 'torch', "
             "'matplotlib', 'sklearn') if name in sys.modules)\n"
             "print(code, heavy)\n")
    completed = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                               text=True, timeout=120)
    assert completed.stdout.strip() == "2 []", completed.stderr
    # a usage error is one line on stderr, with nothing before it
    assert completed.stderr.splitlines() == [
        "label_smoothing_loss.py: error: --smoothing must be in [0, 1), got 2.0"]
