import { join, resolve } from 'node:path';
import { readFolderTemplate } from '@eaglet/chat-template';
import {
  type DraftConfigInput,
  EagletError,
  eagle3DefaultAuxLayers,
  eosTokenIds,
  findTensorKey,
  isEagletError,
  readModelConfig,
  type TargetInfo,
  type TargetModel,
} from '@eaglet/core';
import {
  QWEN2_AUDIO_MAX_SECONDS,
  QWEN2_AUDIO_PLACEHOLDER,
  QWEN2_AUDIO_SAMPLE_RATE,
  qwen2AudioTokenCount,
} from './audio-tokens.js';
import { QWEN2_AUDIO_TEMPLATE_ID } from './chat-template.js';

export const QWEN2_AUDIO_TARGET_ID = 'qwen2-audio';
/** The plugin's Python package (the engine adapter, the vLLM shim, the demo builder). */
const PYTHON_DIR = resolve(import.meta.dirname, '..', 'python');
/** The quickstart's demo data and the Qwen2 tokenizer its demo model is built with. */
const DEMO_DIR = resolve(import.meta.dirname, '..', 'demo');
const ARCHITECTURE = 'Qwen2AudioForConditionalGeneration';
/** The embedding key of the hub checkpoint, and the one transformers 5 writes when re-saving. */
const EMBEDDING_KEYS = [
  'language_model.model.embed_tokens.weight',
  'model.language_model.embed_tokens.weight',
];
/** transformers' Qwen2AudioConfig default, for a config.json that does not spell it out. */
const DEFAULT_AUDIO_TOKEN_INDEX = 151646;

interface TextConfig {
  num_hidden_layers: number;
  hidden_size: number;
  intermediate_size: number;
  num_attention_heads: number;
  vocab_size: number;
  bos_token_id?: number;
  eos_token_id?: number | number[];
}

const fail = (modelDir: string, message: string, hint?: string) =>
  new EagletError(
    'EAGLET_TARGET_CONFIG',
    `${join(modelDir, 'config.json')}: ${message}`,
    hint ? { hint } : {},
  );

/** Qwen/Qwen2-Audio-7B-Instruct (and checkpoints of the same architecture, such as the tiny test model). */
export const qwen2AudioTarget: TargetModel = {
  id: QWEN2_AUDIO_TARGET_ID,
  description:
    'Qwen2-Audio (Qwen2AudioForConditionalGeneration): Whisper-large-v3 encoder + Qwen2-7B text model',
  architectures: [ARCHITECTURE],
  chatTemplate: QWEN2_AUDIO_TEMPLATE_ID,
  audio: {
    sampleRate: QWEN2_AUDIO_SAMPLE_RATE,
    channels: 1,
    maxSeconds: QWEN2_AUDIO_MAX_SECONDS,
    placeholder: QWEN2_AUDIO_PLACEHOLDER,
    tokenCount: qwen2AudioTokenCount,
  },
  // vLLM's default; AngelSlim's [1, L//2-1, L-4] layer outputs are the same layers.
  auxLayers: eagle3DefaultAuxLayers,
  engineAdapter: 'eaglet_qwen2_audio',
  enginePath: PYTHON_DIR,

  async inspect(modelDir: string): Promise<TargetInfo> {
    const config = readModelConfig(modelDir) as {
      architectures?: string[];
      text_config?: TextConfig;
      audio_token_index?: number;
    };
    const architecture = config.architectures?.[0];
    if (architecture !== ARCHITECTURE)
      throw fail(
        modelDir,
        `architecture is ${architecture ?? '(none)'}, not ${ARCHITECTURE}`,
        'pick the target plugin for this model (`eaglet plugins`)',
      );
    const text = config.text_config;
    if (!text?.num_hidden_layers || !text.hidden_size || !text.vocab_size)
      throw fail(modelDir, 'text_config needs num_hidden_layers, hidden_size and vocab_size');
    let auxLayerIds: TargetInfo['auxLayerIds'];
    try {
      auxLayerIds = qwen2AudioTarget.auxLayers(text.num_hidden_layers);
    } catch (e) {
      throw isEagletError(e) ? fail(modelDir, e.message, e.hint) : e;
    }
    return {
      architecture,
      numLayers: text.num_hidden_layers,
      hiddenSize: text.hidden_size,
      vocabSize: text.vocab_size,
      auxLayerIds,
      embeddingKey: findTensorKey(modelDir, EMBEDDING_KEYS, 'token embedding'),
      ...(text.bos_token_id === undefined ? {} : { bosTokenId: text.bos_token_id }),
      eosTokenIds: eosTokenIds(modelDir, text.eos_token_id),
      audioTokenId: config.audio_token_index ?? DEFAULT_AUDIO_TOKEN_INDEX,
      reads: [
        'config.json: architectures, audio_token_index, text_config (layers, widths, vocabulary, bos/eos)',
        'preprocessor_config.json: the Whisper feature extractor (engine)',
        'generation_config.json: eos_token_id (every id that ends generation)',
        `model.safetensors (or its index): the whole model, the embedding at ${EMBEDDING_KEYS.join(' or ')}`,
        'tokenizer.json (or vocab.json + merges.txt), tokenizer_config.json',
        `chat template: ${readFolderTemplate(modelDir)?.file ?? 'none found (prepare will refuse the folder)'}`,
      ],
      notes: [
        "vLLM 0.32's Qwen2AudioForConditionalGeneration lacks SupportsEagle3: the plugin's vLLM plugin (python/eaglet_qwen2_audio_vllm) adds it",
      ],
    };
  },

  /**
   * REFERENCE.md's draft for the 7B target (hidden 4096, intermediate 11008, 32 heads, 4 kv heads,
   * head dim 128, rope theta 10000, 8192 positions, eps 1e-6, draft vocabulary 32000); for other
   * widths the same proportions (head dim 128, or 16 below 1024 wide).
   */
  draftDefaults(info: TargetInfo): DraftConfigInput {
    const hidden = info.hiddenSize;
    const headDim = hidden >= 1024 ? 128 : 16;
    const heads = Math.max(1, Math.floor(hidden / headDim));
    return {
      hidden_size: hidden,
      intermediate_size: hidden === 4096 ? 11008 : Math.ceil((hidden * 11008) / 4096 / 8) * 8,
      num_attention_heads: heads,
      num_key_value_heads: heads % 4 === 0 ? 4 : heads,
      head_dim: headDim,
      vocab_size: info.vocabSize,
      draft_vocab_size: Math.min(32000, info.vocabSize),
      rope_theta: 10000,
      max_position_embeddings: 8192,
      rms_norm_eps: 1e-6,
      ...(info.bosTokenId === undefined ? {} : { bos_token_id: info.bosTokenId }),
      ...(info.eosTokenIds[0] === undefined ? {} : { eos_token_id: info.eosTokenIds[0] }),
    };
  },

  demo: {
    description:
      'a small Qwen2-Audio trained on CPU to transcribe 40 sentences (the real Qwen2 tokenizer and Whisper processor, hidden 64, 8 layers), and its datasets: new clips of the sentences to train a draft on, and held-out voices to measure it on',
    builder: 'eaglet_qwen2_audio.demo_target',
    builderInputs: [
      ...['demo.py', 'demo_speech.py', 'demo_target.py'].map((f) =>
        join(PYTHON_DIR, 'eaglet_qwen2_audio', f),
      ),
      ...[
        'qwen2-tokenizer.json.gz',
        'corpus.json',
        'corpus-speech.opus',
        ...['0870', '0880', '0890', '0920', '0930'].map((id) => `librivox-${id}.wav`),
      ].map((f) => join(DEMO_DIR, f)),
    ],
    data: DEMO_DIR,
    // Measured in docs/perf/quality.md: a 64-wide draft learns in hundreds of steps at lr 3e-3
    // (the 7B reference's 1e-4 is far too low for it), faster per record seen in batches of 4 than
    // of 8 (300 x 4: acceptance length 3.21, 150 x 8: 2.49); three TTT steps cover the three draft
    // tokens the demo's benchmark proposes.
    train: {
      optimizer: { lr: 3e-3 },
      ttt: { steps: 3 },
      batching: { maxRecords: 4 },
      evalEvery: 100,
      precision: 'fp32',
    },
    draftVocabSize: 4096,
  },
};
