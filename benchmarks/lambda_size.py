"""Unzipped size of every Lambda function after `sam build`: its own package plus the layers it attaches,
against the budgets in infra/lambda_packages.py (Lambda refuses more than 250 MiB).

    python benchmarks/lambda_size.py                        # runs `sam build` into a temporary directory
    python benchmarks/lambda_size.py --build-dir .aws-sam/build   # measures an existing build
    python benchmarks/lambda_size.py --build-dir new --before old # and compares with an earlier build

tests/infra/test_lambda_packages.py fails when a function exceeds its budget.
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from infra.cfn_template import load_template  # noqa: E402
from infra.lambda_packages import MB, budget  # noqa: E402

SAM = REPO / ".venv-tools" / "bin" / "sam"


class FunctionSize(NamedTuple):
    package: int  # bytes of the function's own directory
    layers: dict[str, int]  # bytes of each attached layer

    @property
    def total(self) -> int:
        return self.package + sum(self.layers.values())


def tree_bytes(path: Path) -> int:
    """What Lambda counts: the sum of the file sizes once unzipped."""
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file() and not file.is_symlink())


def function_sizes(build_dir: Path) -> dict[str, FunctionSize]:
    """Sizes read from the built template, so layers count for exactly the functions that attach them."""
    resources = load_template(build_dir / "template.yaml")["Resources"]
    sizes = {}
    for name, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        layers = [layer["Ref"] for layer in resource["Properties"].get("Layers", []) if isinstance(layer, dict)]
        sizes[name] = FunctionSize(
            tree_bytes(build_dir / name), {layer: tree_bytes(build_dir / layer) for layer in layers}
        )
    return sizes


def sam_build(build_dir: Path, cache_dir: Path) -> None:
    sam = str(SAM) if SAM.exists() else "sam"
    env = {
        **os.environ,
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "SAM_CLI_TELEMETRY": "0",
    }
    command = [sam, "build", "--build-dir", str(build_dir), "--cache-dir", str(cache_dir)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"sam build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def report(sizes: dict[str, FunctionSize], before: dict[str, FunctionSize] | None = None) -> list[str]:
    lines = [
        f"{'function':<24} {'package':>8} {'layers':>8} {'total':>8} {'budget':>8}" + ("   before" if before else "")
    ]
    for name, size in sorted(sizes.items()):
        layers = sum(size.layers.values())
        verdict = "" if size.total <= budget(name) else "  OVER BUDGET"
        was = f" {before[name].total / MB:8.1f}" if before and name in before else ""
        lines.append(
            f"{name:<24} {size.package / MB:8.1f} {layers / MB:8.1f} {size.total / MB:8.1f} {budget(name) / MB:8.0f}"
            f"{was}{verdict}"
        )
    layer_sizes = {layer: bytes_ for size in sizes.values() for layer, bytes_ in size.layers.items()}
    lines += [f"layer {layer}: {bytes_ / MB:.1f} MB" for layer, bytes_ in sorted(layer_sizes.items())]
    lines.append("MB = 10^6 bytes, unzipped; total = package + attached layers (Lambda's limit: 262 MB)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description="Unzipped size of each Lambda function after sam build")
    parser.add_argument("--build-dir", type=Path, help="an existing `sam build` output (default: build now)")
    parser.add_argument("--before", type=Path, help="an earlier build to compare with")
    args = parser.parse_args()
    before = function_sizes(args.before) if args.before else None
    if args.build_dir:
        print("\n".join(report(function_sizes(args.build_dir), before)))
        return
    with tempfile.TemporaryDirectory() as scratch:
        sam_build(Path(scratch) / "build", Path(scratch) / "cache")
        print("\n".join(report(function_sizes(Path(scratch) / "build"), before)))


if __name__ == "__main__":
    main()
