"""The package's shape, read from its own code: the import graph of every module of quickdraw_tf/ and
beam_jobs/ (ast, imports inside functions counted), and what importing each library module does.

Layers, each importing only those below it (README, "Where things live"):
  data < pictures < models < training < inference < serve < commands
data/ is TensorFlow-free (the Beam workers import it); beam_jobs/ imports nothing of quickdraw_tf but data/;
no module imports a command module (`python -m` modules); no import cycle anywhere; importing a library
module changes no process-wide state.

An import edge goes to the module named (`from a.b import c` to a.b.c when that is a module, else to
a.b); the packages a module's import runs on the way (a, a.b) are not counted as edges, as in Python's
own view of who imports whom. A command's import of itself (the `python -m` re-import idiom) is no edge.
"""

from __future__ import annotations

import ast
import concurrent.futures
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("quickdraw_tf", "beam_jobs")
COMMANDS = frozenset(
    {f"quickdraw_tf.{name}" for name in ("download", "train", "evaluate", "predict", "render", "generate",
                                          "export_onnx", "static_page")}
    | {"quickdraw_tf.serve.__main__", "beam_jobs.make_tfrecords"}
)
# Module prefix -> layer rank; a module belongs to the longest prefix that names it.
LAYERS = {
    "quickdraw_tf.data": 0,
    "quickdraw_tf.pictures": 1,
    "quickdraw_tf.models": 2,
    "quickdraw_tf.training": 3,
    "quickdraw_tf.inference": 4,
    "quickdraw_tf.serve": 5,
    "quickdraw_tf": 6,  # the commands, their helpers (cli, quiet) and the package's lazy Predictor
}
LAYER_NAMES = {rank: prefix.rsplit(".", 1)[-1] for prefix, rank in LAYERS.items()}
LAYER_NAMES[6] = "commands"
# What the Beam job's workers import: it must all be in data/ (a sample of names, so that this file
# fails where the layer does not exist).
DATA_MODULES = ("drawing", "formats", "ink", "layout", "limits", "preprocess", "splits", "features")
TENSORFLOW = frozenset({"tensorflow", "keras", "tensorflow_datasets", "tf_keras"})


def _module_files() -> dict[str, str]:
    modules = {}
    for package in PACKAGES:
        for directory, _, files in os.walk(os.path.join(REPO, package)):
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(directory, name)
                parts = os.path.relpath(path, REPO)[: -len(".py")].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                modules[".".join(parts)] = path
    return modules


MODULES = _module_files()


def _is_package(module: str) -> bool:
    return MODULES[module].endswith("__init__.py")


def _imported_names(module: str) -> Iterator[str]:
    """Every name an import statement of `module` loads, anywhere in the file; relative ones resolved."""
    with open(MODULES[module], encoding="utf-8") as f:
        tree = ast.parse(f.read(), MODULES[module])
    package = module if _is_package(module) else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            for alias in node.names:
                yield f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source


def _edges() -> dict[str, set[str]]:
    """module -> the project modules and the external top-level packages it imports."""
    graph = {}
    for module in MODULES:
        targets = set()
        for name in _imported_names(module):
            parts = name.split(".")
            while parts and ".".join(parts) not in MODULES and parts[0] in PACKAGES:
                parts.pop()
            target = ".".join(parts) if parts and parts[0] in PACKAGES else name.split(".")[0]
            if target != module:
                targets.add(target)
        graph[module] = targets
    return graph


GRAPH = _edges()


def _internal(targets: set[str]) -> set[str]:
    return {target for target in targets if target in MODULES}


def _layer(module: str) -> int:
    if module in COMMANDS:  # serve/__main__ is the server's command
        return LAYERS["quickdraw_tf"]
    prefix = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[prefix]


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _cycles() -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each as a sorted list."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(_internal(GRAPH[node])):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(MODULES)))
    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return found


def _violations(sources, allowed) -> list[str]:
    return sorted(
        f"{source} imports {target}"
        for source in sources
        for target in GRAPH[source]
        if not allowed(source, target)
    )


def test_the_graph_sees_imports_inside_functions():
    # A check of the reader itself: the registry imports each model inside a function.
    assert "quickdraw_tf.models.rnn" in GRAPH["quickdraw_tf.models"]
    assert "tensorflow" in GRAPH["quickdraw_tf.training.trainer"]


def test_no_import_cycle():
    assert _cycles() == []


def test_data_imports_no_tensorflow_and_nothing_above_it():
    data = [module for module in MODULES if _in(module, "quickdraw_tf.data")]
    missing = [name for name in DATA_MODULES if f"quickdraw_tf.data.{name}" not in MODULES]
    assert not missing, f"not in quickdraw_tf/data/: {missing}"
    def allowed(_: str, target: str) -> bool:
        return target not in TENSORFLOW and (target not in MODULES or _in(target, "quickdraw_tf.data"))

    assert _violations(data, allowed) == []


def test_models_import_nothing_from_training_inference_serve_or_commands():
    models = [module for module in MODULES if _in(module, "quickdraw_tf.models")]
    assert "quickdraw_tf.models.sketch_sampling" in models  # sampling lives beside Sketch-RNN
    below = ("quickdraw_tf.models", "quickdraw_tf.pictures", "quickdraw_tf.data")
    assert _violations(models, lambda _, t: t not in MODULES or any(_in(t, p) for p in below)) == []


def test_each_layer_imports_only_itself_and_the_layers_below():
    library = [module for module in MODULES if _in(module, "quickdraw_tf")]

    def downward(source: str, target: str) -> bool:
        return not _in(target, "quickdraw_tf") or _layer(target) <= _layer(source)

    problems = _violations(library, downward)
    assert [f"{p} ({LAYER_NAMES[_layer(p.split()[0])]} above {LAYER_NAMES[_layer(p.split()[-1])]})"
            for p in problems] == []


def test_no_module_imports_a_command_module():
    assert COMMANDS <= set(MODULES)
    assert _violations(MODULES, lambda _, target: target not in COMMANDS) == []


def test_beam_jobs_import_only_quickdraw_tf_data():
    jobs = [module for module in MODULES if _in(module, "beam_jobs")]

    def allowed(_: str, target: str) -> bool:
        return not _in(target, "quickdraw_tf") or _in(target, "quickdraw_tf.data")

    assert _violations(jobs, allowed) == []


def _absolute_imports(path: str) -> Iterator[str]:
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            yield node.module or ""


def test_no_test_imports_the_benchmarks():
    """The suite runs on the package and its own harness (tests/sample.py, tests/harness.py); the benchmark
    scripts' own tests live beside them, in benchmarks/tests/."""
    found = []
    for directory, _, files in os.walk(os.path.join(REPO, "tests")):
        for path in (os.path.join(directory, name) for name in files if name.endswith(".py")):
            imported = [name for name in _absolute_imports(path) if name.split(".")[0] == "benchmarks"]
            found += [f"{os.path.relpath(path, REPO)}: {name}" for name in imported]
    assert found == []


# ---------------------------------------------------------------------------------------------------
# Importing the library changes no process-wide state

# Run in a fresh interpreter per module: records the calls that change process-wide state when they
# come from the project's own files (TensorFlow, absl and Beam configure themselves; that is theirs).
_PROBE = r"""
import importlib, logging, os, sys
OURS = tuple(os.path.join(sys.argv[1], package) + os.sep for package in ("quickdraw_tf", "beam_jobs"))
PLUMBING = ("os.py", "_collections_abc.py", "contextlib.py")  # frames between a call and its caller
calls = []

def watch(owner, name):
    original = getattr(owner, name)
    def wrapper(*args, **kwargs):
        frame = sys._getframe(1)
        while frame.f_back and frame.f_code.co_filename.endswith(PLUMBING):
            frame = frame.f_back
        if frame.f_code.co_filename.startswith(OURS):
            calls.append(f"{name} from {os.path.relpath(frame.f_code.co_filename, sys.argv[1])}")
        return original(*args, **kwargs)
    setattr(owner, name, wrapper)

for owner, name in [(os, "dup2"), (os, "dup"), (type(os.environ), "__setitem__"),
                    (type(os.environ), "__delitem__"), (logging.Logger, "setLevel"),
                    (logging.Filterer, "addFilter"), (logging.Logger, "addHandler"),
                    (logging, "basicConfig"), (logging, "disable"), (logging, "setLoggerClass")]:
    watch(owner, name)
meta_path, path_hooks, stderr = list(sys.meta_path), list(sys.path_hooks), sys.stderr
importlib.import_module(sys.argv[2])
calls += [f"sys.meta_path gains {type(hook).__module__}.{type(hook).__name__}" for hook in sys.meta_path
          if hook not in meta_path and type(hook).__module__.startswith(("quickdraw_tf", "beam_jobs"))]
calls += ["sys.path_hooks changed"] * (sys.path_hooks != path_hooks)
calls += ["sys.stderr replaced"] * (sys.stderr is not stderr)
print("\n".join(calls))
"""


def _library_modules() -> list[str]:
    return sorted(module for module in MODULES if _in(module, "quickdraw_tf") and module not in COMMANDS)


def _probe(module: str) -> tuple[str, str, int, str]:
    env = dict(os.environ, PYTHONPATH=REPO)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, REPO, module], capture_output=True, text=True, cwd=REPO, env=env,
        timeout=600,
    )
    return module, done.stdout.strip(), done.returncode, done.stderr[-1000:]


@pytest.mark.integration
def test_importing_a_library_module_changes_no_process_wide_state():
    """Each non-command module of quickdraw_tf in a fresh interpreter: no import hook, no fd 2 redirect
    (even for a moment), no logging levels, filters or handlers, no environment variable set by our code."""
    modules = _library_modules()
    assert "quickdraw_tf.inference.predictor" in modules and "quickdraw_tf" in modules
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(_probe, modules))
    failed = [(module, stderr) for module, _, code, stderr in results if code]
    assert failed == []
    changes = {module: out.splitlines() for module, out, _, _ in results if out}
    assert changes == {}
