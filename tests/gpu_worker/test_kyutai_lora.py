"""DSM LoRA on tiny models through the handler: moshi's own LoRA, a `cfg` LUT conditioner and no fuser,
the adapter loaded back by moshi's loader (CheckpointInfo lora_weights) and synthesized with."""

import io
import json
import zipfile

import pytest
import torch
from gpu_worker.engines import get_engine
from gpu_worker.engines.kyutai import checkpoint_info
from gpu_worker.handler import handler
from moshi.modules.lora import LoRALinear
from safetensors.torch import load_file

from voice_onboarding.contract.engines import KYUTAI

TEXTS = {
    "same_0": "The quick brown fox jumps over the lazy dog near the river bank.",
    "same_1": "Please call Stella and ask her to bring these things with her from the store.",
}


@pytest.mark.parametrize("model", ["dsm_cfg", "dsm_nofuser"])
def test_train_lora_job_saves_an_adapter_moshis_loader_reads(
    model, tiny_engines, blob_server, voices_audio, monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("KYUTAI_TTS_REPO", str(tiny_engines[model]))
    engine = get_engine(KYUTAI)
    assert (engine.tts.lm.fuser is None) == (model == "dsm_nofuser")
    assert bool(engine.tts.valid_cfg_conditionings) == (model == "dsm_cfg")
    base_state = {k: v.clone() for k, v in engine.tts.lm.state_dict().items()}

    dataset = [{"url": blob_server.put(f"ds/{n}.wav", voices_audio[n]), "transcript": t} for n, t in TEXTS.items()]
    out = handler(
        {"input": {"kind": "train_lora", "tts_type": KYUTAI, "dataset": dataset,
                   "hyperparameters": {"rank": 4, "alpha": 8, "learning_rate": 0.01, "steps": 2},
                   "outputs": {"adapter": blob_server.url("a/adapter.zip"),
                               "evaluation_audio": blob_server.url("a/eval.opus")}}}
    )  # fmt: skip
    assert "error" not in out, out
    assert len(out["loss_history"]) == 2 and all(x > 0 for x in out["loss_history"])
    ev = out["evaluation"]
    assert ev["heldout_item"] == 2 and ev["heldout_loss"] > 0 and ev["heldout_loss_base"] > 0
    assert ev["heldout_loss"] != ev["heldout_loss_base"]  # the adapter changed the model
    assert ev["evaluation_audio_uploaded"] and blob_server.get("a/eval.opus")[:4] == b"OggS"

    # The cached engine serves later jobs with its base weights: no LoRA layer left, nothing changed.
    assert not any(isinstance(m, LoRALinear) for m in engine.tts.lm.modules())
    after = engine.tts.lm.state_dict()
    assert after.keys() == base_state.keys() and all(torch.equal(after[k], base_state[k]) for k in base_state)

    adapter_dir = tmp_path / "adapter"
    with zipfile.ZipFile(io.BytesIO(blob_server.get("a/adapter.zip"))) as zf:
        assert {"config.json", "lora.safetensors", "manifest.json"} <= set(zf.namelist())
        zf.extractall(adapter_dir)
    config = json.loads((adapter_dir / "config.json").read_text())
    assert config["lora"] is True and config["lora_rank"] == 4 and config["lora_scaling"] == 2.0
    saved = load_file(str(adapter_dir / "lora.safetensors"))
    assert saved and all("lora_A" in k or "lora_B" in k for k in saved)
    assert any(k.endswith("lora_B.weight") and v.abs().sum() > 0 for k, v in saved.items())  # trained

    # moshi's own loader: the config's lora keys + lora_weights -> LoRALinear layers holding the saved weights.
    from moshi.models.tts import TTSModel

    info = checkpoint_info(str(tiny_engines[model]), config_path=adapter_dir / "config.json",
                           lora_weights=adapter_dir / "lora.safetensors")  # fmt: skip
    assert info.lora_weights == adapter_dir / "lora.safetensors"
    tts = TTSModel.from_checkpoint_info(info, n_q=16, device="cpu", dtype=torch.float32)
    loaded = tts.lm.state_dict()
    assert any(isinstance(m, LoRALinear) for m in tts.lm.modules())
    assert all(torch.equal(loaded[k], v) for k, v in saved.items())

    # ... and the worker's engine on that adapter speaks.
    from gpu_worker import voices

    adapted = engine.with_adapter(adapter_dir, key="speaker-1/v1")
    files = voices.make_voice_files(adapted, voices_audio["same_0"], tmp_path / "voice")
    wav, sr = adapted.synthesize("Hello.", adapted.load_voice(files.artifact_path))
    assert sr == 24_000 and len(wav) > 0 and torch.isfinite(torch.from_numpy(wav)).all()
