"""Engine plug-in interface: one TTS backend per `tts_type` (contract/engines.py says what each can do).

An engine that speaks turns a voice prompt into its *artifact*, the file its runtime loads to speak with
that voice (`make_voice`), reloads such a file the way a runtime would (`load_voice`) and speaks with it
(`synthesize`). Speaker similarity is judged by one encoder for every engine (`embed`, resemblyzer), so
scores compare across engines.
"""

from abc import ABC
from pathlib import Path
from typing import Any

import numpy as np

from gpu_worker.engines.speaker_encoder import embed_utterance


class EngineUnavailable(RuntimeError):
    """The engine's package, weights or device are missing: the job must fail, never fake a result."""


class Engine(ABC):
    name: str
    # Whether make_voice/load_voice/synthesize work; engines that cannot produce no test samples.
    can_synthesize: bool = False
    # Hz of the audio the engine's model consumes and produces (prompts are written at this rate).
    sample_rate: int = 16_000
    # Longest voice prompt the engine takes (seconds); None for engines without prompts.
    prompt_seconds: float | None = None
    # File name and description of the per-voice artifact in the embedding ZIP / clone output.
    artifact_name: str = "voice.safetensors"
    artifact_format: str = "none"

    def embed(self, wav: np.ndarray, sample_rate: int) -> np.ndarray:
        """L2-normalised speaker-similarity vector (resemblyzer d-vector) of one utterance."""
        return embed_utterance(wav, sample_rate)

    @property
    def embedding_dim(self) -> int:
        return 256

    def model_info(self) -> dict[str, Any]:
        """Model id, revision and what else a runtime needs to know to load the artifact."""
        return {}

    def make_voice(self, prompt_wav: Path, dest: Path) -> None:
        """Writes the voice artifact for the prompt at `prompt_wav` (mono WAV at `sample_rate`) to `dest`."""
        raise EngineUnavailable(f"{self.name} engine cannot make a voice")

    def load_voice(self, artifact: Path) -> Any:
        """Loads an artifact written by `make_voice`, as the engine's runtime would."""
        raise EngineUnavailable(f"{self.name} engine cannot load a voice")

    def synthesize(self, text: str, voice: Any) -> tuple[np.ndarray, int]:
        """Speaks `text` with a voice returned by `load_voice`: float mono PCM and its sample rate."""
        raise EngineUnavailable(f"{self.name} engine cannot synthesize speech")
