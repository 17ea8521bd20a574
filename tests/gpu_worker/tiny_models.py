"""Tiny random-weight Kyutai models built from the libraries' real classes, saved the way the real ones are.

No wheel ships TTS weights, and nothing may be downloaded at test time: these stand in for the baked
checkpoints so the worker's real loading, voice, synthesis and training code runs on CPU in seconds.
- DSM (moshi): Mimi and the LM from `moshi.models.loaders` at toy sizes, a sentencepiece tokenizer trained
  here, and a `config.json` naming the files, loaded back through `CheckpointInfo` + `TTSModel`.
- Pocket TTS: the wheel's own 2M-parameter YAML config with a local tokenizer, its random state dict saved
  as `model.safetensors` and named by `weights_path`, loaded back through `TTSModel.load_model(config=...)`.
Also used by benchmarks/embed_bench.py.
"""

import copy
import json
from pathlib import Path
from typing import Any

CORPUS = [
    "the quick brown fox jumps over the lazy dog near the river bank",
    "please call stella and ask her to bring these things with her from the store",
    "we will meet again tomorrow morning to discuss the results of the project",
    "hello world this is a short test of the voice",
]
CFG_VALUES = ["1.0", "1.5", "2.0", "2.5", "3.0"]


def train_tokenizer(dest: Path) -> Path:
    """A sentencepiece model trained on a few lines (what both families' text tokenizers are)."""
    import sentencepiece as spm

    corpus = dest.with_suffix(".txt")
    corpus.write_text("\n".join(CORPUS * 10))
    prefix = str(dest.with_suffix(""))
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=prefix, vocab_size=48, model_type="unigram", character_coverage=1.0,
        bos_id=-1, eos_id=-1, unk_id=0, pad_id=-1, hard_vocab_limit=False, minloglevel=2,
    )  # fmt: skip
    return Path(prefix + ".model")


def build_dsm(dest: Path, *, fuser: str = "empty", seed: int = 0) -> Path:
    """A moshi DSM TTS checkpoint directory (config.json + LM + Mimi + tokenizer) at toy sizes.

    fuser: "empty" (a fuser with no conditions, the public-data model's layout), "cfg" (a `cfg` LUT
    conditioner summed in, as CFG-distilled checkpoints have) or "none" (no fuser at all).
    """
    import torch
    from moshi.models import loaders
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    dest.mkdir(parents=True, exist_ok=True)
    train_tokenizer(dest / "tokenizer.model")
    mimi_config = copy.deepcopy(loaders._mimi_config)
    mimi_config["seanet"].update(dimension=32, n_filters=4)
    mimi_config["quantizer"].update(dimension=16, bins=64, input_dimension=32, output_dimension=32)
    mimi_config["transformer"].update(
        d_model=32, num_heads=2, num_layers=1, dim_feedforward=64, input_dimension=32, output_dimensions=[32]
    )
    (dest / "mimi.json").write_text(json.dumps(mimi_config))
    mimi = loaders.get_mimi(None, mimi_config, num_codebooks=16)
    save_file(mimi.state_dict(), str(dest / "mimi.safetensors"))

    lm_kwargs: dict[str, Any] = dict(loaders._lm_kwargs)
    lm_kwargs.update(
        dim=32, num_heads=2, num_layers=1, hidden_scale=2, context=200, text_card=64, card=64,
        n_q=16, dep_q=16, delays=[0, 0] + [1] * 15, existing_text_padding_id=3,
        depformer_dim=16, depformer_dim_feedforward=32, depformer_num_heads=1, depformer_num_layers=1,
        depformer_context=16,
    )  # fmt: skip
    if fuser == "cfg":
        lut = {"n_bins": len(CFG_VALUES), "tokenizer": "noop", "dim": 16, "possible_values": CFG_VALUES}
        lm_kwargs["conditioners"] = {"cfg": {"type": "lut", "lut": lut}}
        lm_kwargs["fuser"] = {"sum": ["cfg"], "cross": [], "prepend": []}
    elif fuser == "empty":
        lm_kwargs["conditioners"] = {}
        lm_kwargs["fuser"] = {"sum": [], "cross": [], "prepend": []}
    else:  # a condition provider (TTSModel.generate needs one) but no fuser
        lm_kwargs["conditioners"] = {}
    lm = loaders.get_moshi_lm(None, lm_kwargs=copy.deepcopy(lm_kwargs), dtype=torch.float32)
    save_file(lm.state_dict(), str(dest / "model.safetensors"))
    config = {
        **lm_kwargs,
        "moshi_name": "model.safetensors",
        "mimi_name": "mimi.safetensors",
        "mimi_config_name": "mimi.json",
        "tokenizer_name": "tokenizer.model",
        "model_id": {"sig": f"tiny-{fuser}", "epoch": 0},
        "tts_config": {"audio_delay": 0.16},
    }
    (dest / "config.json").write_text(json.dumps(config))
    return dest


def build_pocket(dest: Path, seed: int = 0) -> Path:
    """A Pocket TTS YAML config (the wheel's 2M english one) pointing at local random weights; returns its path."""
    import pocket_tts
    import sentencepiece as spm
    import torch
    import yaml
    from gpu_worker.engines.pocket import import_pocket_tts
    from safetensors.torch import save_file

    import_pocket_tts()
    torch.manual_seed(seed)
    dest.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(dest / "tokenizer.model")
    raw = yaml.safe_load((Path(pocket_tts.__file__).parent / "config" / "english_2m_2026-10.yaml").read_text())
    raw["flow_lm"]["lookup_table"]["tokenizer_path"] = str(tokenizer)
    raw["flow_lm"]["lookup_table"]["n_bins"] = spm.SentencePieceProcessor(model_file=str(tokenizer)).vocab_size()
    raw["weights_path"] = None
    raw["weights_path_without_voice_cloning"] = None
    (dest / "build.yaml").write_text(yaml.safe_dump(raw))

    from pocket_tts.utils.config import load_config

    model = pocket_tts.TTSModel._from_pydantic_config_with_weights(
        load_config(str(dest / "build.yaml")), temp=0.3, sampler_decode_steps=1, noise_clamp=None, eos_threshold=-4.0
    )
    save_file(model.state_dict(), str(dest / "model.safetensors"))
    raw["weights_path"] = str(dest / "model.safetensors")
    config = dest / "tiny.yaml"
    config.write_text(yaml.safe_dump(raw))
    return config
