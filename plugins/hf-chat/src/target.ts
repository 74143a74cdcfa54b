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
  readModelConfig,
  type TargetInfo,
  type TargetModel,
} from '@eaglet/core';
import { ARCHITECTURES } from './architectures.js';
import { HF_CHAT_TEMPLATE_ID } from './chat-template.js';

export const HF_CHAT_TARGET_ID = 'hf-chat';
/** The plugin's Python package (the engine adapter and the demo builder). */
const PYTHON_DIR = resolve(import.meta.dirname, '..', 'python');
/** The quickstart's demo data and the chat template its demo model ships. */
const DEMO_DIR = resolve(import.meta.dirname, '..', 'demo');
const EMBEDDING_KEY = 'model.embed_tokens.weight';
/** Eagle3 drafts keep a 32000-token vocabulary (vLLM's and the reference's default). */
const DRAFT_VOCAB = 32000;

const fail = (modelDir: string, message: string, hint?: string) =>
  new EagletError(
    'EAGLET_TARGET_CONFIG',
    `${join(modelDir, 'config.json')}: ${message}`,
    hint ? { hint } : {},
  );

/**
 * Any decoder-only chat LLM that transformers loads (the architectures in `ARCHITECTURES`): a
 * text-only target whose chat template is the checkpoint's own. Generic: a plugin written for
 * one of these families takes precedence.
 */
export const hfChatTarget: TargetModel = {
  id: HF_CHAT_TARGET_ID,
  description: `Decoder-only chat LLMs that transformers loads: ${Object.values(ARCHITECTURES)
    .map((a) => a.family)
    .join(', ')}; the checkpoint's own chat template`,
  architectures: Object.keys(ARCHITECTURES),
  generic: true,
  chatTemplate: HF_CHAT_TEMPLATE_ID,
  // vLLM's default (SupportsEagle3.get_eagle3_default_aux_hidden_state_layers), which SpecForge
  // uses too: the states after 2, L//2 and L-3 layers.
  auxLayers: eagle3DefaultAuxLayers,
  engineAdapter: 'eaglet_hf_chat',
  enginePath: PYTHON_DIR,

  async inspect(modelDir: string): Promise<TargetInfo> {
    const config = readModelConfig(modelDir);
    const architecture = (config.architectures as string[] | undefined)?.[0];
    const known = architecture === undefined ? undefined : ARCHITECTURES[architecture];
    if (!known)
      throw fail(
        modelDir,
        `architecture is ${architecture ?? '(none)'}, which ${HF_CHAT_TARGET_ID} does not claim`,
        `${HF_CHAT_TARGET_ID} takes ${Object.keys(ARCHITECTURES).join(', ')}`,
      );
    const numLayers = num(config, 'num_hidden_layers');
    const hiddenSize = num(config, 'hidden_size');
    const vocabSize = num(config, 'vocab_size');
    if (!numLayers || !hiddenSize || !vocabSize)
      throw fail(modelDir, 'needs num_hidden_layers, hidden_size and vocab_size');
    for (const key of ['final_logit_softcapping', 'logits_scaling'])
      if (config[key] !== undefined && config[key] !== null && config[key] !== 1)
        throw fail(
          modelDir,
          `${key} is ${config[key]}: the target's logits are not lm_head(h), which eaglet's training and generation compute`,
          'such a family needs its own target plugin',
        );
    let auxLayerIds: TargetInfo['auxLayerIds'];
    try {
      auxLayerIds = hfChatTarget.auxLayers(numLayers);
    } catch (e) {
      throw isEagletError(e) ? fail(modelDir, e.message, e.hint) : e;
    }
    const bos = num(config, 'bos_token_id');
    const template = readFolderTemplate(modelDir);
    return {
      architecture: architecture!,
      numLayers,
      hiddenSize,
      vocabSize,
      auxLayerIds,
      embeddingKey: findTensorKey(modelDir, [EMBEDDING_KEY], 'token embedding'),
      ...(bos === undefined ? {} : { bosTokenId: bos }),
      eosTokenIds: eosTokenIds(modelDir, config.eos_token_id),
      textConfig: config,
      reads: [
        'config.json: architectures, num_hidden_layers, hidden_size, vocab_size, bos/eos_token_id; the draft copies intermediate_size, num_attention_heads, num_key_value_heads, head_dim, rope_theta, max_position_embeddings, rms_norm_eps',
        'generation_config.json: eos_token_id (every id that ends generation)',
        `model.safetensors (or its index): ${EMBEDDING_KEY}`,
        'tokenizer.json, tokenizer_config.json (special tokens)',
        `chat template: ${template ? template.file : 'none found (prepare will refuse the folder)'}`,
      ],
      notes: [
        known.vllmEagle3
          ? `vLLM serves an Eagle3 draft for ${architecture} natively (SupportsEagle3): the exported draft loads unchanged`
          : `vLLM 0.32 has no Eagle3 support for ${architecture} (its class does not implement SupportsEagle3): train and serve the draft on the embedded backend`,
      ],
    };
  },

  /** The draft copies the target's text config (core's draftFromTextConfig); draft vocabulary 32000. */
  draftDefaults(info: TargetInfo): DraftConfigInput {
    return draftFromTextConfig(info, {
      draftVocabSize: DRAFT_VOCAB,
      ropeTheta: 10000,
      maxPositionEmbeddings: 8192,
    });
  },

  demo: {
    description:
      "a tiny Llama 3 built offline (Llama 3's chat template and special tokens on a small byte-level BPE with its split regex, hidden 128, 8 layers, random weights, a sharpened output head)",
    builder: 'eaglet_hf_chat.demo',
    builderInputs: [
      join(PYTHON_DIR, 'eaglet_hf_chat', 'demo.py'),
      join(DEMO_DIR, 'demo.json'),
      join(DEMO_DIR, 'chat_template.jinja'),
    ],
    data: DEMO_DIR,
    train: { optimizer: { lr: 3e-3 }, ttt: { steps: 3 }, precision: 'fp32' },
    draftVocabSize: 512,
  },
};
