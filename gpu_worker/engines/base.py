"""Engine plug-in interface: one TTS backend per `tts_type`."""

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np


class EngineUnavailable(RuntimeError):
    """The engine's package, weights or device are missing: the job must fail, never fake a result."""


class Engine(ABC):
    name: str
    # Whether `synthesize` works; engines that cannot synthesize produce no test samples.
    can_synthesize: bool = False

    @abstractmethod
    def embed(self, wav: np.ndarray, sample_rate: int) -> np.ndarray:
        """L2-normalised speaker embedding of one utterance."""

    @property
    @abstractmethod
    def embedding_dim(self) -> int: ...

    def conditioning(self, reference: Path) -> np.ndarray:
        """What the engine stores per cloned voice; by default the speaker embedding."""
        from gpu_worker.audio import SAMPLE_RATE, load_mono

        return self.embed(load_mono(reference, SAMPLE_RATE), SAMPLE_RATE)

    def synthesize(self, text: str, voice_sample: Path) -> tuple[np.ndarray, int]:
        raise EngineUnavailable(f"{self.name} engine cannot synthesize speech")
