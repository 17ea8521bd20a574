"""The package's import graph (every `import` statement, lazy ones inside functions included): no cycle,
and every import points down the layers of docs/architecture.md."""

import ast
from collections import defaultdict
from pathlib import Path

import voice_onboarding

PACKAGE = Path(voice_onboarding.__file__).parent
# Higher may import lower, never the reverse; the same rank is allowed only within one layer.
RANKS = {
    "handlers": 6,  # Lambda entry points and the composition root they share
    "cli": 6,
    "api": 5,
    "services": 4,
    "adapters": 3,  # Step Functions, RunPod HTTP
    "storage": 3,  # DynamoDB and S3 repositories
    "audio": 3,  # stands apart: only the contract and domain below it
    "aws_clients": 2,  # the one place boto3 clients are built
    "observability": 2,
    "content_disposition": 2,  # a header helper (stdlib only) for API responses and presigned URLs
    "settings": 1.5,
    "domain": 1,
    "contract": 0,  # pydantic and the standard library only
    "__init__": 0,
}


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module(p): p for p in PACKAGE.rglob("*.py")}


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (`from x import y` counts y when y is a module)."""
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{name}: relative import (the package uses absolute imports)"
                base = node.module or ""
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_layer_has_a_rank():
    assert {_layer(m) for m in _modules()} <= set(RANKS)


def test_no_upward_import():
    upward = [
        f"{source} -> {target}"
        for source, targets in import_graph().items()
        for target in targets
        if _layer(source) != _layer(target) and RANKS[_layer(target)] >= RANKS[_layer(source)]
    ]
    assert upward == []


def test_no_import_cycle():
    graph = import_graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for module in sorted(_modules()):
        if module not in state:
            visit(module)
    assert cycles == []


def test_the_graph_sees_lazy_and_package_imports():
    # The checks above are only as good as the graph: a function-level import and an import of a
    # package's __init__ both count.
    graph = import_graph()
    assert "voice_onboarding.services.gpu_jobs" in graph["voice_onboarding.services.job_status"]
    assert "voice_onboarding.contract.engines" in graph["voice_onboarding.contract.gpu"]


def test_no_lambda_module_imports_the_local_harness():
    # infra/ (moto Step Functions, in-process Lambdas and GPU worker) is injected by the local stack and
    # the tests through handlers.composition.override; the Lambda package does not ship it.
    offenders = [
        name
        for name, path in _modules().items()
        for node in ast.walk(ast.parse(path.read_text()))
        if (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in {"infra", "tests"})
        or (isinstance(node, ast.Import) and any(a.name.split(".")[0] in {"infra", "tests"} for a in node.names))
    ]
    assert offenders == []
