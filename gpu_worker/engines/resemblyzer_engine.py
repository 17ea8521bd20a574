"""CPU engine: speaker embeddings only (resemblyzer cannot synthesize)."""

import numpy as np

from gpu_worker.engines.base import Engine
from gpu_worker.engines.speaker_encoder import embed_utterance, get_encoder
from voice_onboarding.contract.engines import RESEMBLYZER


class ResemblyzerEngine(Engine):
    name = RESEMBLYZER
    can_synthesize = False

    def __init__(self) -> None:
        get_encoder()  # load now so model-load time is measured as such, not inside the first embed

    @property
    def embedding_dim(self) -> int:
        return 256

    def embed(self, wav: np.ndarray, sample_rate: int) -> np.ndarray:
        return embed_utterance(wav, sample_rate)
