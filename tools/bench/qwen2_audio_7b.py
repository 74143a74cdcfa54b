"""Qwen2-Audio-7B-Instruct's architecture (REFERENCE.md: Whisper-large-v3 encoder, Qwen2-7B text
model) and the reference's Eagle3 draft for it: the one spec the GPU benchmarks build with random
weights (train_throughput.py, embedded_speedup_bound.py)."""

QWEN2_AUDIO_7B = {
    "audio_config": {
        "model_type": "qwen2_audio_encoder",
        "d_model": 1280,
        "encoder_layers": 32,
        "encoder_attention_heads": 20,
        "encoder_ffn_dim": 5120,
        "num_mel_bins": 128,
        "max_source_positions": 1500,
    },
    "text_config": {
        "model_type": "qwen2",
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "vocab_size": 156032,
        "rope_theta": 10000.0,
        "rms_norm_eps": 1e-5,
        "max_position_embeddings": 32768,
    },
    "audio_token_index": 151646,
}

# DraftConfig fields of the reference's draft (its vocab_size is the target's).
DRAFT_7B = {"hidden_size": 4096, "intermediate_size": 11008, "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128}
DRAFT_VOCAB_7B = 32000
# vLLM's aux layer ids for the 32-layer text model, as the plugin's rule gives them (`eaglet target info`).
AUX_LAYER_IDS_7B = [2, 16, 29]
