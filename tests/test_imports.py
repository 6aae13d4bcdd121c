"""The import graph of snnx/: no cycle, and every arrow in the direction of the layering below.

Every import counts, at module level or inside a function. A unit is a top-level module or subpackage
of snnx; a unit may import only units of later layers (below it).
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections import defaultdict
from pathlib import Path

import snnx

ROOT = Path(snnx.__file__).resolve().parent

LAYERS = [
    ("snnx.cli",),                                           # the `snnx` command
    ("snnx.api", "snnx.help"),                               # the Python API; help from the schemas
    ("snnx.app",),                                           # the Hydra app (launch, checks, dispatch)
    ("snnx.sweep_jobs",),                                    # a multirun's job labels, records and summary
    ("snnx.stages",),                                        # config → plain arguments, one function per stage
    ("snnx.composition",),                                   # composing a config (another preset's, too) with Hydra
    ("snnx.validate",),                                      # semantic checks of a composed config
    ("snnx.pipeline", "snnx.doctor", "snnx.tables", "snnx.clean"),  # the work behind the stages
    ("snnx.export",),                                        # an SNN written in other formats (NIR)
    ("snnx.snn_file",),                                      # a converted SNN as a file and back
    ("snnx.trainer", "snnx.calibration", "snnx.ann", "snnx.sim_state"),
    ("snnx.distributed",),
    ("snnx.artifacts",),
    ("snnx.config",),                                        # the schema and the registry hub
    ("snnx.convert", "snnx.sim"),                            # the SNN side
    ("snnx.models", "snnx.data"),
    ("snnx.activations", "snnx.neurons"),                    # the ANN side never imports the SNN side
    ("snnx.energy",),                                        # energy models: counts in, picojoules out
    ("snnx.kernels",),
    ("snnx.finite",),                                        # NaN/Inf stop a stage, named
    ("snnx.progress",),                                      # progress bars over batches
    ("snnx.registry", "snnx.seeding", "snnx.console", "snnx.lazy", "snnx.preemption"),
    ("snnx.errors", "snnx"),
]
RANK = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}
# Hydra and OmegaConf belong to the command line and the composition of configs.
CONFIG_LIBRARIES = ("hydra", "omegaconf")
MAY_USE_CONFIG_LIBRARIES = {"snnx.cli", "snnx.api", "snnx.help", "snnx.app", "snnx.sweep_jobs", "snnx.composition", "snnx.stages",
                            "snnx.validate", "snnx.config"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((target, node.lineno))
            # `from pkg import sub` may import a submodule
            for alias in node.names:
                if (ROOT.parent / Path(*f"{target}.{alias.name}".split("."))).with_suffix(".py").is_file() or \
                        (ROOT.parent / Path(*f"{target}.{alias.name}".split(".")) / "__init__.py").is_file():
                    out.append((f"{target}.{alias.name}", node.lineno))
    return out


def _unit(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else parts[0]


def _graph():
    modules = {}
    for path in sorted(ROOT.rglob("*.py")):
        modules[_module_name(path)] = _imports(path)
    return modules


def test_every_unit_has_a_layer():
    units = {_unit(m) for m in _graph()}
    assert units <= set(RANK), f"give these a layer: {sorted(units - set(RANK))}"


def test_imports_point_down_the_layers():
    wrong = []
    for module, imports in _graph().items():
        mine = _unit(module)
        for target, line in imports:
            if target.split(".")[0] in CONFIG_LIBRARIES and mine not in MAY_USE_CONFIG_LIBRARIES:
                wrong.append(f"{module}:{line} imports {target}")
            if not target.startswith("snnx"):
                continue
            theirs = _unit(target)
            if theirs != mine and RANK.get(theirs, -1) <= RANK[mine]:
                wrong.append(f"{module}:{line} → {target}")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_no_import_cycle_between_modules():
    graph = _graph()
    edges = defaultdict(set)
    for module, imports in graph.items():
        for target, _line in imports:
            while target and target not in graph:  # `from snnx.x import name` → snnx.x
                target = target.rpartition(".")[0]
            if target and target != module and not module.startswith(target + "."):
                edges[module].add(target)
    # A package's __init__ importing its own submodules (and they the package) is how Python packages work;
    # a cycle between two modules that are not package and member is not.
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if node.startswith(nxt + ".") or nxt.startswith(node + "."):
                continue
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(" → ".join(c) for c in cycles)


# Imports that may stay inside a function only with their reason written next to them.
_DEFERRED = ("snnx", "torch", "torchvision", "numpy", "numba", "pandas", "matplotlib", "hydra", "omegaconf")


def _deferred_without_reason(path: Path) -> list[str]:
    source = path.read_text()
    comments = {tok.start[0] for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                if tok.type == tokenize.COMMENT}
    lines = source.splitlines()
    out = []
    for fn in ast.walk(ast.parse(source)):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        imports = [node for node in ast.walk(fn) if isinstance(node, (ast.Import, ast.ImportFrom))]
        import_lines = {i for node in imports for i in range(node.lineno, node.end_lineno + 1)}
        for node in imports:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                ["snnx" if node.level else node.module or ""]
            if not any(name.split(".")[0] in _DEFERRED for name in names):
                continue
            # a comment on its line(s) or on one of the 3 lines above it, inside the same function ...
            said = bool(comments & set(range(max(fn.lineno + 1, node.lineno - 3), node.end_lineno + 1)))
            # ... or heading the group of imports (and blank lines between them) it belongs to
            line = node.lineno - 1
            while not said and line > fn.lineno and (line in import_lines or not lines[line - 1].strip()):
                line -= 1
            said = said or line in comments
            if not said:
                out.append(f"{_module_name(path)}:{node.lineno} {ast.unparse(node)}")
    return out


def test_every_import_inside_a_function_says_why():
    """Imports belong at the top; one stays inside a function only for an optional dependency, start-up time
    (torch, Hydra, matplotlib loaded only when needed) or a cycle, and a comment beside it says which."""
    bare = [hit for path in sorted(ROOT.rglob("*.py")) for hit in _deferred_without_reason(path)]
    assert not bare, "move these to the module's top, or say on the line above why they wait:\n" + "\n".join(bare)
