"""What each `tts_type` can do: the API validates requests against this table, the worker serves it.

Engine names are spelled here and nowhere else; everything else reads `DEFAULT_TTS_TYPE` or the table.
"""

from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, Field


class EngineCapabilities(BaseModel):
    model_config = ConfigDict(frozen=True)

    tts_type: str
    description: str
    # ISO 639 language codes the engine speaks; None = language-independent (a speaker encoder only).
    languages: frozenset[str] | None = None
    sample_rate: int = Field(description="Hz of the audio the engine consumes and produces")
    artifact_format: str = Field(description="what the embedding ZIP holds per sample")
    can_synthesize: bool
    can_train: bool
    # Extension of the file a `clone` job stores for a speaker: the voice artifact, or the similarity vector.
    conditioning_extension: str = "npy"

    def speaks(self, language: str) -> bool:
        """Whether a BCP-47 tag (en-US, hi-IN) is in the engine's languages (its language subtag decides)."""
        return self.languages is None or language.split("-")[0].lower() in self.languages


KYUTAI = "kyutai"
KYUTAI_POCKET = "kyutai-pocket"
RESEMBLYZER = "resemblyzer"

# Which Kyutai family `kyutai` means, and why, is argued in gpu_worker/README.md ("Engines").
ENGINES: MappingProxyType[str, EngineCapabilities] = MappingProxyType(
    {
        KYUTAI: EngineCapabilities(
            tts_type=KYUTAI,
            description="Kyutai DSM TTS kyutai/tts-0.75b-en-public (moshi): the voice is an audio prefix, the Mimi "
            "codes of a <=10 s prompt; LoRA fine-tuning in moshi's own adapter format",
            languages=frozenset({"en"}),
            sample_rate=24_000,
            artifact_format="voice.safetensors {'prefix': [1 + 16, frames] moshi audio prefix} + prompt.wav",
            can_synthesize=True,
            can_train=True,
            conditioning_extension="safetensors",
        ),
        KYUTAI_POCKET: EngineCapabilities(
            tts_type=KYUTAI_POCKET,
            description="Kyutai Pocket TTS (pocket-tts, ~100M parameters, CPU real time): the voice is the model "
            "state after a <=10 s prompt, one model per language; no fine-tuning",
            languages=frozenset({"en", "fr", "de", "pt", "it", "es", "nl"}),
            sample_rate=24_000,
            artifact_format="voice.safetensors (pocket-tts export_model_state voice state) + prompt.wav",
            can_synthesize=True,
            can_train=False,
            conditioning_extension="safetensors",
        ),
        RESEMBLYZER: EngineCapabilities(
            tts_type=RESEMBLYZER,
            description="resemblyzer speaker encoder (GE2E d-vectors, CPU); embeds and scores, cannot speak",
            languages=None,
            sample_rate=16_000,
            artifact_format="similarity/sample_<i>.npy resemblyzer d-vectors + similarity/centroid.npy",
            can_synthesize=False,
            can_train=True,
        ),
    }
)
DEFAULT_TTS_TYPE = KYUTAI


class UnknownTtsType(ValueError):
    """A `tts_type` that is not in ENGINES; the message names the supported ones."""


def supported() -> str:
    return ", ".join(sorted(ENGINES))


def capabilities(tts_type: str) -> EngineCapabilities:
    try:
        return ENGINES[tts_type]
    except KeyError:
        raise UnknownTtsType(f"unknown tts_type {tts_type!r}; supported: {supported()}") from None
