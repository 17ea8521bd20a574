"""Engine registry keyed by `tts_type`; a loaded engine is reused by later jobs on a warm worker."""

import threading
from collections.abc import Callable

from gpu_worker.engines.base import Engine, EngineUnavailable
from voice_onboarding.contract.engines import KYUTAI, KYUTAI_POCKET, RESEMBLYZER


def _kyutai() -> Engine:
    from gpu_worker.engines.kyutai import KyutaiEngine

    return KyutaiEngine()


def _pocket() -> Engine:
    from gpu_worker.engines.pocket import PocketEngine

    return PocketEngine()


def _resemblyzer() -> Engine:
    from gpu_worker.engines.resemblyzer_engine import ResemblyzerEngine

    return ResemblyzerEngine()


# Keyed by the contract's tts_type names (contract/engines.py holds what each can do).
ENGINES: dict[str, Callable[[], Engine]] = {KYUTAI: _kyutai, KYUTAI_POCKET: _pocket, RESEMBLYZER: _resemblyzer}
_loaded: dict[str, Engine] = {}
_lock = threading.Lock()


def get_engine(tts_type: str) -> Engine:
    if tts_type not in ENGINES:
        raise ValueError(f"unknown tts_type {tts_type!r}; known: {', '.join(sorted(ENGINES))}")
    with _lock:
        if tts_type not in _loaded:
            # Failures are not cached: a later job retries (e.g. after a transient GPU error).
            _loaded[tts_type] = ENGINES[tts_type]()
        return _loaded[tts_type]


__all__ = ["ENGINES", "Engine", "EngineUnavailable", "get_engine"]
