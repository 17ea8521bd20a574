"""Table keys and S3 object keys: the single source of the storage layout."""

VOICE_SK_PREFIX = "VOICE#"


def tenant_pk(partner: str) -> str:
    return f"TENANT#{partner}"


def voice_sk(name: str) -> str:
    return f"{VOICE_SK_PREFIX}{name}"


def voice_prefix(partner: str, voice_id: str) -> str:
    return f"{partner}/{voice_id}/"


def original_key(partner: str, voice_id: str) -> str:
    return f"{voice_prefix(partner, voice_id)}original.opus"


def sample_key(partner: str, voice_id: str, index: int) -> str:
    return f"{voice_prefix(partner, voice_id)}samples/{index}.opus"


def samples_prefix(partner: str, voice_id: str) -> str:
    return f"{voice_prefix(partner, voice_id)}samples/"


def test_samples_prefix(partner: str, voice_id: str, tts_type: str) -> str:
    return f"{voice_prefix(partner, voice_id)}test/{tts_type}/"


def embedding_zip_key(partner: str, voice_id: str, tts_type: str) -> str:
    return f"{voice_prefix(partner, voice_id)}embeddings/{tts_type}.zip"
