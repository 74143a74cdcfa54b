import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DraftConfig, EagletError, readJsonFile, type TargetInfo, type TargetModel } from '@eaglet/core';
import { QWEN2_AUDIO_MAX_SECONDS, QWEN2_AUDIO_SAMPLE_RATE, qwen2AudioTokenCount } from './audio-tokens.js';
import { QWEN2_AUDIO_TEMPLATE_ID } from './chat-template.js';

export const QWEN2_AUDIO_TARGET_ID = 'qwen2-audio';
const ARCHITECTURE = 'Qwen2AudioForConditionalGeneration';
/** The embedding key of the hub checkpoint, and the one transformers 5 writes when re-saving. */
const EMBEDDING_KEYS = [
  'language_model.model.embed_tokens.weight',
  'model.language_model.embed_tokens.weight',
];

interface TextConfig {
  num_hidden_layers: number;
  hidden_size: number;
  intermediate_size: number;
  num_attention_heads: number;
  vocab_size: number;
  bos_token_id?: number;
  eos_token_id?: number | number[];
  max_position_embeddings?: number;
}

const fail = (modelDir: string, message: string, hint?: string) =>
  new EagletError(
    'EAGLET_TARGET_CONFIG',
    `${join(modelDir, 'config.json')}: ${message}`,
    hint ? { hint } : {},
  );

/** Tensor names in a folder's safetensors: the sharded index's weight_map, or each file's header. */
function tensorNames(modelDir: string): Set<string> {
  const index = join(modelDir, 'model.safetensors.index.json');
  if (existsSync(index))
    return new Set(
      Object.keys((readJsonFile(index, "the model's weight index") as { weight_map: object }).weight_map),
    );
  const file = join(modelDir, 'model.safetensors');
  if (!existsSync(file)) return new Set();
  const fd = openSync(file, 'r');
  try {
    const len = Buffer.alloc(8);
    readSync(fd, len, 0, 8, 0);
    const header = Buffer.alloc(Number(len.readBigUInt64LE()));
    readSync(fd, header, 0, header.length, 8);
    return new Set(Object.keys(JSON.parse(header.toString('utf8'))).filter((k) => k !== '__metadata__'));
  } finally {
    closeSync(fd);
  }
}

/** Taps of Eagle3 for an L-layer target: outputs of layers 1, L/2-1 and L-4 (AngelSlim's default; vLLM's 2, L/2, L-3 as layer inputs). */
export function tapLayers(numLayers: number): [number, number, number] {
  return [1, Math.floor(numLayers / 2) - 1, numLayers - 4];
}

/** Qwen/Qwen2-Audio-7B-Instruct (and checkpoints of the same architecture, such as the tiny test model). */
export const qwen2AudioTarget: TargetModel = {
  id: QWEN2_AUDIO_TARGET_ID,
  description:
    'Qwen2-Audio (Qwen2AudioForConditionalGeneration): Whisper-large-v3 encoder + Qwen2-7B text model',
  architectures: [ARCHITECTURE],
  chatTemplate: QWEN2_AUDIO_TEMPLATE_ID,
  audio: { sampleRate: QWEN2_AUDIO_SAMPLE_RATE, channels: 1, maxSeconds: QWEN2_AUDIO_MAX_SECONDS },
  engineAdapter: 'eaglet_qwen2_audio',
  enginePath: resolve(import.meta.dirname, '..', 'python'),

  async inspect(modelDir: string): Promise<TargetInfo> {
    const path = join(modelDir, 'config.json');
    if (!existsSync(path)) {
      throw new EagletError('EAGLET_TARGET_CONFIG', `no config.json in ${modelDir}`, {
        hint: 'pass the local folder of a Hugging Face checkpoint (config.json, tokenizer files, safetensors)',
      });
    }
    const config = readJsonFile(path, "the model's config.json") as {
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
    if (text.num_hidden_layers < 6)
      throw fail(
        modelDir,
        `${text.num_hidden_layers} layers: Eagle3 taps three distinct layers and needs at least 6`,
      );
    const names = tensorNames(modelDir);
    const embeddingKey = EMBEDDING_KEYS.find((k) => names.has(k)) ?? EMBEDDING_KEYS[0]!;
    const eos = text.eos_token_id;
    return {
      architecture,
      numLayers: text.num_hidden_layers,
      hiddenSize: text.hidden_size,
      vocabSize: text.vocab_size,
      tapLayers: tapLayers(text.num_hidden_layers),
      embeddingKey,
      ...(text.bos_token_id === undefined ? {} : { bosTokenId: text.bos_token_id }),
      eosTokenIds: eos === undefined ? [] : Array.isArray(eos) ? eos : [eos],
      audioTokenId: config.audio_token_index ?? 151646,
    };
  },

  /**
   * REFERENCE.md's draft for the 7B target (hidden 4096, intermediate 11008, 32 heads, 4 kv heads,
   * head dim 128); for other widths the same proportions (head dim 128, or 16 below 1024 wide).
   */
  draftDefaults(info: TargetInfo): DraftConfig {
    const hidden = info.hiddenSize;
    const headDim = hidden >= 1024 ? 128 : 16;
    const heads = Math.max(1, Math.floor(hidden / headDim));
    const kvHeads = heads % 4 === 0 ? 4 : heads;
    const intermediate = hidden === 4096 ? 11008 : Math.ceil((hidden * 11008) / 4096 / 8) * 8;
    return DraftConfig.parse({
      hidden_size: hidden,
      intermediate_size: intermediate,
      num_attention_heads: heads,
      num_key_value_heads: kvHeads,
      head_dim: headDim,
      vocab_size: info.vocabSize,
      draft_vocab_size: Math.min(32000, info.vocabSize),
      ...(info.bosTokenId === undefined ? {} : { bos_token_id: info.bosTokenId }),
      ...(info.eosTokenIds[0] === undefined ? {} : { eos_token_id: info.eosTokenIds[0] }),
      eagle_aux_hidden_state_layer_ids: info.tapLayers.map((t) => t + 1),
    });
  },

  audioTokenCount: qwen2AudioTokenCount,
};
