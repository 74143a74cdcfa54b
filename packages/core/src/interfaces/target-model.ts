import type { DraftConfig } from '../schemas/draft.js';

/** What the target expects of audio input. */
export interface AudioSpec {
  /** Sample rate the feature extractor expects (Hz). */
  sampleRate: number;
  channels: 1;
  /** Longest clip the audio encoder sees; longer audio needs a long-audio policy. */
  maxSeconds: number;
}

/** Facts about a concrete target checkpoint, read from its folder. */
export interface TargetInfo {
  /** The `architectures[0]` of config.json. */
  architecture: string;
  numLayers: number;
  hiddenSize: number;
  /** Vocabulary size of the language model head (config), which may exceed the tokenizer's. */
  vocabSize: number;
  /** Decoder layers whose outputs feed the draft's `fc` (0-based layer index; output of that layer). */
  tapLayers: [number, number, number];
  /** Key of the token-embedding weight in the checkpoint's safetensors. */
  embeddingKey: string;
  bosTokenId?: number;
  eosTokenIds: number[];
  /** Placeholder id that the processor expands into one token per audio frame. */
  audioTokenId?: number;
}

/**
 * A target model family (e.g. Qwen2-Audio). Registered by a plugin; the flows never name a concrete
 * target. The engine side of a target lives in the Python module named by `engineAdapter`.
 */
export interface TargetModel {
  /** Id used on the command line and in configs (`--target qwen2-audio`). Unique across plugins. */
  readonly id: string;
  /** One line shown by `eaglet plugins`. */
  readonly description: string;
  /** Hugging Face architecture names (config.json `architectures`) this target handles. */
  readonly architectures: readonly string[];
  /** Id of the ChatTemplate that reproduces this model's own chat template. */
  readonly chatTemplate: string;
  /** Audio input spec; absent for text-only targets. */
  readonly audio?: AudioSpec;
  /** Python module with the engine-side adapter (loads the target, returns tapped hidden states and logits). */
  readonly engineAdapter: string;
  /** Folder to put on PYTHONPATH so `engineAdapter` imports (plugins ship their adapter beside their JS). */
  readonly enginePath?: string;
  /** Reads the facts eaglet needs from a local model folder (config.json and friends). */
  inspect(modelDir: string): Promise<TargetInfo>;
  /** Draft architecture defaults for this target (REFERENCE.md's table for Qwen2-Audio). */
  draftDefaults(info: TargetInfo): DraftConfig;
  /** Audio placeholder tokens the target spends on a clip of `samples` samples at `audio.sampleRate`. */
  audioTokenCount?(samples: number): number;
}
