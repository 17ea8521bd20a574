"""The local stack (`python -m infra.local_stack ARGS`) with tracemalloc on, for finding what grows.

    python benchmarks/memtrace_stack.py DUMP_DIR FRAMES [local_stack args...]

On SIGUSR1 the process writes `DUMP_DIR/{n}.json` (objects per type from the garbage collector, and what
the harness retains: in-process GPU runs, moto's Step Functions executions, S3 keys and versions,
DynamoDB items), with FRAMES > 0 also `DUMP_DIR/{n}.snapshot` (tracemalloc, FRAMES deep; slows the
stack), then `DUMP_DIR/{n}.done`. On SIGUSR2 it prints every thread's stack to stderr (a hang).
benchmarks/soak.py starts the stack through this and diffs the dumps.
"""

import collections
import faulthandler
import gc
import json
import os
import signal
import sys
import threading
import tracemalloc
from pathlib import Path
from typing import Any


def deep_size(roots: list[Any], stop: list[Any]) -> int:
    """Bytes of everything reachable from `roots` (gc referents), not counting `stop` and what only
    code, classes and modules hold: what dropping the roots would free, roughly."""
    import types

    seen = {id(o) for o in stop}
    shared = (type, types.ModuleType, types.FunctionType, types.CodeType, types.BuiltinFunctionType, threading.Thread)
    pending, total = list(roots), 0
    while pending:
        obj = pending.pop()
        if id(obj) in seen or isinstance(obj, shared):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj, 0)
        pending.extend(gc.get_referents(obj))
    return total


def retained() -> dict[str, int]:
    """Counts of what the harness and moto hold, read in-process (no request needed)."""
    counts: dict[str, int] = {
        "OS threads": len(os.listdir("/proc/self/task")),
        "open files": len(os.listdir("/proc/self/fd")),
        "python threads": threading.active_count(),
    }
    from infra.local.gpu import InProcessGpuClient

    counts["local GPU runs"] = len(InProcessGpuClient._runs)
    from moto.backends import get_backend
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    def add(name: str, n: int) -> None:
        counts[name] = counts.get(name, 0) + n

    for backends in (get_backend("stepfunctions"), stepfunctions_parser_backends):
        for account in backends.values():
            for backend in account.values():
                for machine in backend.state_machines:
                    add("sfn executions", len(machine.executions))
                    # Executions point at their machine and backend: count only what is theirs.
                    size = deep_size(list(machine.executions), [machine, backend, *backend.state_machines])
                    add("sfn executions KiB", size // 1024)
    for account in get_backend("s3").values():
        for bucket in account["global"].buckets.values():
            add("s3 keys", len(bucket.keys))
            add("s3 versions", sum(len(bucket.keys.getlist(k)) for k in bucket.keys))
    for account in get_backend("dynamodb").values():
        for backend in account.values():
            for table in backend.tables.values():
                add("dynamodb items", sum(1 for _ in table.all_items()))
    return counts


def dump(folder: Path, n: int) -> None:
    gc.collect()
    if tracemalloc.is_tracing():
        tracemalloc.take_snapshot().dump(str(folder / f"{n}.snapshot"))
    types = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
    try:
        held: dict[str, Any] = retained()
    except (AttributeError, KeyError, ImportError, TypeError) as error:  # a moto internal moved
        held = {"error": repr(error)}
    report = {"types": dict(types.most_common(300)), "retained": held}
    (folder / f"{n}.json").write_text(json.dumps(report))
    (folder / f"{n}.done").touch()


def main() -> None:
    folder = Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    frames = int(sys.argv[2])
    if frames:
        tracemalloc.start(frames)
    wanted = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: wanted.set())
    faulthandler.register(signal.SIGUSR2, all_threads=True)

    def dumper() -> None:
        n = 0
        while True:
            wanted.wait()
            wanted.clear()
            dump(folder, n)
            n += 1

    threading.Thread(target=dumper, daemon=True, name="memtrace").start()
    from infra.local_stack import main as stack_main

    stack_main(sys.argv[3:])


if __name__ == "__main__":
    main()
