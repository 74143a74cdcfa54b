import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readFolderTemplate } from '@eaglet/chat-template';
import {
  type DraftConfigInput,
  draftFromTextConfig,
  EagletError,
  eagle3DefaultAuxLayers,
  eosTokenIds,
  findTensorKey,
  isEagletError,
  configNumber as num,
  readJsonFile,
  readModelConfig,
  type TargetInfo,
  type TargetModel,
} from '@eaglet/core';
import {
  QWEN25_OMNI_HOP_LENGTH,
  QWEN25_OMNI_MAX_SECONDS,
  QWEN25_OMNI_PLACEHOLDER,
  QWEN25_OMNI_SAMPLE_RATE,
  qwen25OmniTokenCount,
} from './audio-tokens.js';
import { QWEN25_OMNI_TEMPLATE_ID } from './chat-template.js';

export const QWEN25_OMNI_TARGET_ID = 'qwen2.5-omni';
/** The plugin's Python package (the engine adapter, the vLLM shim, the demo builder). */
const PYTHON_DIR = resolve(import.meta.dirname, '..', 'python');
/** The quickstart's demo data and the chat template its demo model ships. */
const DEMO_DIR = resolve(import.meta.dirname, '..', 'demo');
/**
 * The hub checkpoint (Qwen/Qwen2.5-Omni-7B: `Qwen2_5OmniModel`, thinker + talker + token2wav),
 * the same saved by transformers' whole-model class, and a thinker saved alone.
 */
const ARCHITECTURES = [
  'Qwen2_5OmniModel',
  'Qwen2_5OmniForConditionalGeneration',
  'Qwen2_5OmniThinkerForConditionalGeneration',
];
/** The hub's key, then transformers 5's when it re-saves the whole model or the thinker alone. */
const EMBEDDING_KEYS = [
  'thinker.model.embed_tokens.weight',
  'thinker.model.language_model.embed_tokens.weight',
  'model.language_model.embed_tokens.weight',
  'model.embed_tokens.weight',
];
/** transformers' Qwen2_5OmniThinkerConfig default, for a config.json that does not spell it out. */
const DEFAULT_AUDIO_TOKEN_INDEX = 151646;
/** The feature extractor settings the token count formula assumes (the hub's preprocessor_config.json). */
const FEATURE_EXTRACTOR = {
  feature_size: 128,
  sampling_rate: QWEN25_OMNI_SAMPLE_RATE,
  hop_length: QWEN25_OMNI_HOP_LENGTH,
  chunk_length: QWEN25_OMNI_MAX_SECONDS,
};

const fail = (modelDir: string, file: string, message: string, hint?: string) =>
  new EagletError('EAGLET_TARGET_CONFIG', `${join(modelDir, file)}: ${message}`, hint ? { hint } : {});

type Config = Record<string, unknown>;

/** The thinker's config: `thinker_config` of the whole model's config.json, or the file itself for a thinker saved alone. */
function thinkerConfig(config: Config): Config {
  return (config.thinker_config as Config | undefined) ?? config;
}

/** Refuses a feature extractor whose window or hop differ from what the token count assumes. */
function checkFeatureExtractor(modelDir: string): void {
  const file = 'preprocessor_config.json';
  const path = join(modelDir, file);
  if (!existsSync(path))
    throw fail(
      modelDir,
      file,
      'does not exist: the audio feature extractor is described there',
      'copy it from the hub checkpoint',
    );
  const fe = readJsonFile(path, "the model's preprocessor_config.json") as Config;
  for (const [key, value] of Object.entries(FEATURE_EXTRACTOR))
    if (fe[key] !== value)
      throw fail(
        modelDir,
        file,
        `${key} is ${JSON.stringify(fe[key])}, not ${value}: the audio token counts would not match the processor's`,
        "restore the published checkpoint's preprocessor_config.json",
      );
}

/** Qwen/Qwen2.5-Omni-7B and -3B, and checkpoints of the same architecture (the tiny demo), through its thinker. */
export const qwen25OmniTarget: TargetModel = {
  id: QWEN25_OMNI_TARGET_ID,
  description:
    "Qwen2.5-Omni's thinker (Qwen2_5OmniThinkerForConditionalGeneration): a Whisper-style audio encoder (300 s window) + a Qwen2.5 text model; audio in, text out",
  architectures: ARCHITECTURES,
  chatTemplate: QWEN25_OMNI_TEMPLATE_ID,
  audio: {
    sampleRate: QWEN25_OMNI_SAMPLE_RATE,
    channels: 1,
    maxSeconds: QWEN25_OMNI_MAX_SECONDS,
    placeholder: QWEN25_OMNI_PLACEHOLDER,
    tokenCount: qwen25OmniTokenCount,
  },
  // vLLM's default (SupportsEagle3.get_eagle3_default_aux_hidden_state_layers) on the thinker's text model.
  auxLayers: eagle3DefaultAuxLayers,
  engineAdapter: 'eaglet_qwen2_5_omni',
  enginePath: PYTHON_DIR,

  async inspect(modelDir: string): Promise<TargetInfo> {
    const config = readModelConfig(modelDir);
    const architecture = (config.architectures as string[] | undefined)?.[0];
    if (architecture === undefined || !ARCHITECTURES.includes(architecture))
      throw fail(
        modelDir,
        'config.json',
        `architecture is ${architecture ?? '(none)'}, not one of ${ARCHITECTURES.join(', ')}`,
        'pick the target plugin for this model (`eaglet plugins`)',
      );
    const thinker = thinkerConfig(config);
    const text = (thinker.text_config ?? {}) as Config;
    const numLayers = num(text, 'num_hidden_layers');
    const hiddenSize = num(text, 'hidden_size');
    const vocabSize = num(text, 'vocab_size');
    if (!numLayers || !hiddenSize || !vocabSize)
      throw fail(
        modelDir,
        'config.json',
        'the thinker text_config needs num_hidden_layers, hidden_size and vocab_size',
      );
    checkFeatureExtractor(modelDir);
    let auxLayerIds: TargetInfo['auxLayerIds'];
    try {
      auxLayerIds = qwen25OmniTarget.auxLayers(numLayers);
    } catch (e) {
      throw isEagletError(e) ? fail(modelDir, 'config.json', e.message, e.hint) : e;
    }
    const bos = num(text, 'bos_token_id');
    const template = readFolderTemplate(modelDir);
    return {
      architecture,
      numLayers,
      hiddenSize,
      vocabSize,
      auxLayerIds,
      embeddingKey: findTensorKey(modelDir, EMBEDDING_KEYS, 'token embedding'),
      ...(bos === undefined ? {} : { bosTokenId: bos }),
      eosTokenIds: eosTokenIds(modelDir, text.eos_token_id ?? thinker.eos_token_id),
      audioTokenId: num(thinker, 'audio_token_index') ?? DEFAULT_AUDIO_TOKEN_INDEX,
      textConfig: text,
      reads: [
        'config.json: architectures; thinker_config.audio_token_index; thinker_config.text_config (layers, widths, vocabulary, eos; the draft copies its attention shape, rope theta, positions and eps)',
        'preprocessor_config.json: the Whisper feature extractor (128 mel bins, 16 kHz, hop 160, a 300 s window)',
        'generation_config.json: eos_token_id (every id that ends generation)',
        `model.safetensors (or its index): the thinker's weights, the embedding at ${EMBEDDING_KEYS[0]} (or its re-saved names); the talker and token2wav are not loaded`,
        'tokenizer.json, tokenizer_config.json (special tokens)',
        `chat template: ${template ? template.file : 'none found (prepare will refuse the folder)'}`,
      ],
      notes: [
        "vLLM 0.32's Qwen2_5OmniThinkerForConditionalGeneration lacks SupportsEagle3: the plugin's vLLM plugin (python/eaglet_qwen2_5_omni_vllm) adds it",
      ],
    };
  },

  /**
   * The draft copies the thinker's text config (core's draftFromTextConfig; for the 7B: 28 heads,
   * 4 kv heads, 18944, theta 1e6, 32768 positions), as Eagle3 drafts of Qwen2.5 do; draft
   * vocabulary 32000.
   */
  draftDefaults(info: TargetInfo): DraftConfigInput {
    return draftFromTextConfig(info, { draftVocabSize: 32000, ropeTheta: 1e6, maxPositionEmbeddings: 32768 });
  },

  demo: {
    description:
      "a tiny Qwen2.5-Omni built offline (its chat template, special tokens and 300 s Whisper feature extractor, a small byte-level BPE with Qwen2's split regex, thinker hidden 128, 8 layers, random weights, a sharpened output head)",
    builder: 'eaglet_qwen2_5_omni.demo',
    builderInputs: [
      join(PYTHON_DIR, 'eaglet_qwen2_5_omni', 'demo.py'),
      join(DEMO_DIR, 'demo.json'),
      join(DEMO_DIR, 'chat_template.jinja'),
    ],
    data: DEMO_DIR,
    train: { optimizer: { lr: 3e-3 }, ttt: { steps: 3 }, precision: 'fp32' },
    draftVocabSize: 512,
  },
};
