"""Requests checked against the engine table of the GPU contract: 422 naming what is supported."""

from voice_onboarding.contract.engines import ENGINES, EngineCapabilities, UnknownTtsType, capabilities
from voice_onboarding.domain.errors import InvalidRequest


def require_engine(tts_type: str, *, language: str | None = None, train: bool = False) -> EngineCapabilities:
    """The capabilities of `tts_type`; InvalidRequest if it is unknown, does not speak `language`
    (BCP-47, e.g. hi-IN) or cannot train when `train`."""
    try:
        engine = capabilities(tts_type)
    except UnknownTtsType:
        raise InvalidRequest(f"tts_type must be one of {', '.join(sorted(ENGINES))} (got {tts_type!r})") from None
    if language is not None and not engine.speaks(language):
        speakers = sorted(name for name, e in ENGINES.items() if e.speaks(language))
        raise InvalidRequest(
            f"tts_type {tts_type} does not support language {language}: it speaks "
            f"{', '.join(sorted(engine.languages or ()))}"
            + (f"; engines for {language}: {', '.join(speakers)}" if speakers else "")
        )
    if train and not engine.can_train:
        trainable = sorted(name for name, e in ENGINES.items() if e.can_train)
        raise InvalidRequest(f"tts_type {tts_type} cannot train adapters; engines that can: {', '.join(trainable)}")
    return engine
