import type { DraftConfigInput } from '../schemas/draft.js';

/** What the target expects of audio input. */
export interface AudioSpec {
  /** Sample rate the feature extractor expects (Hz). */
  sampleRate: number;
  channels: 1;
  /** Longest clip the audio encoder sees; longer audio needs a long-audio policy. */
  maxSeconds: number;
  /**
   * The placeholder token (as the tokenizer spells it) that stands for one frame of the audio
   * encoder's output; the chat template repeats it `tokenCount(samples)` times per clip.
   */
  placeholder: string;
  /** Placeholder tokens the target spends on a clip of `samples` samples at `sampleRate` (the model's processor, exactly). */
  tokenCount(samples: number): number;
}

/**
 * The three target layers whose hidden states feed the draft's `fc`, in vLLM's numbering of
 * auxiliary hidden-state layers: id k is the hidden state after k decoder layers (0 = the
 * embeddings). The only tap numbering in eaglet.
 */
export type AuxLayerIds = [number, number, number];

/** Facts about a concrete target checkpoint, read from its folder: exactly what the engine will use. */
export interface TargetInfo {
  /** The `architectures[0]` of config.json. */
  architecture: string;
  numLayers: number;
  hiddenSize: number;
  /** Vocabulary size of the language model head (config), which may exceed the tokenizer's. */
  vocabSize: number;
  /** The layers tapped for the draft (vLLM's aux layer ids), by the target's `auxLayers` rule. */
  auxLayerIds: AuxLayerIds;
  /** Key of the token-embedding weight, one the checkpoint's safetensors hold. */
  embeddingKey: string;
  bosTokenId?: number;
  /** Every id that ends generation (generation_config.json's list, else config.json's). */
  eosTokenIds: number[];
  /** Placeholder id that the processor expands into one token per audio frame. */
  audioTokenId?: number;
  /**
   * The text model's config.json fields (the top level, or `text_config`), for targets whose
   * `draftDefaults` copy the target's attention shape, rope and norm eps into the draft.
   */
  textConfig?: Readonly<Record<string, unknown>>;
  /** What the target reads from the model folder, one line per file (`config.json: ...`), for `eaglet target info`. */
  reads?: string[];
  /** What a user should know about this checkpoint (e.g. whether vLLM serves an Eagle3 draft for it). */
  notes?: string[];
}

/**
 * A target model family, declared once, in its plugin: every fact eaglet needs
 * about the family lives here, and the engine receives what it needs through its config (the
 * `EngineTarget` block and the resolved draft config). The flows never name a concrete target;
 * the engine side of a target is the Python adapter module named by `engineAdapter`.
 */
export interface TargetModel {
  /** Id used on the command line and in configs (`--target ID`). Unique across plugins. */
  readonly id: string;
  /** One line shown by `eaglet plugins`. */
  readonly description: string;
  /** Hugging Face architecture names (config.json `architectures`) this target handles; a config without `target` picks the plugin that claims its checkpoint's. */
  readonly architectures: readonly string[];
  /**
   * True for a catch-all target (one for a whole kind of model, such as any chat LLM that
   * transformers loads): it claims its architectures only where no other registered target
   * does, so a plugin written for one family takes precedence.
   */
  readonly generic?: boolean;
  /** Id of the ChatTemplate that reproduces this model's own chat template. */
  readonly chatTemplate: string;
  /** Audio input spec; absent for text-only targets. */
  readonly audio?: AudioSpec;
  /** The rule that picks the aux layer ids for a checkpoint of `numLayers` decoder layers (most targets use core's `eagle3DefaultAuxLayers`). */
  auxLayers(numLayers: number): AuxLayerIds;
  /** Python module of the engine-side adapter (`load_target(target, *, device, dtype)`): the only Python that knows this family. */
  readonly engineAdapter: string;
  /** Folder to put on PYTHONPATH so `engineAdapter` imports (plugins ship their adapter beside their JS). */
  readonly enginePath?: string;
  /** Reads the facts eaglet needs from a local model folder (config.json and friends); refuses what the engine could not use. */
  inspect(modelDir: string): Promise<TargetInfo>;
  /** The draft architecture for this target (its widths, heads, eps); the vocabulary sizes, aux layer ids and target width are filled in by `eaglet train`. */
  draftDefaults(info: TargetInfo): DraftConfigInput;
  /** What `eaglet quickstart --target ID` runs with: a small model of this family and demo data. */
  readonly demo?: TargetDemo;
}

/**
 * A target family's quickstart: a model small enough to train and serve on a laptop CPU in
 * minutes, built offline by the plugin's own Python, and conversations to run the pipeline on.
 * The quickstart flow does the rest (validate, prepare, regenerate, vocab, train, bench).
 */
export interface TargetDemo {
  /** One line on the demo model (shown by `eaglet quickstart`). */
  readonly description: string;
  /**
   * Python module on the plugin's `enginePath` with `build_demo(out: str, seed: int) -> dict`:
   * writes a checkpoint folder of this family into `out` (deterministic for a seed) and returns a
   * summary (`DemoBuildResult`). Run once and cached under $EAGLET_HOME/demo.
   *
   * The builder may also write datasets into `out` and name them in the summary's `datasets`
   * (`DemoDatasets`): the quickstart then trains the draft on `data`'s conversations and
   * `datasets.train`, evaluates on `datasets.heldOut` (so eval metrics and the bigram baseline
   * print) and benchmarks on its prompts, which no training file holds. Without them it trains
   * and benchmarks on `data`'s conversations alone.
   */
  readonly builder: string;
  /** Files that change what the builder writes (hashed into the cache key with the module's source). */
  readonly builderInputs?: readonly string[];
  /**
   * Folder holding `demo.json` (`{records: [{id, prompt, answer, audio?}], longRecording?: {seconds}}`)
   * and the audio files it names (16 kHz mono 16-bit WAV): the demo's conversations.
   */
  readonly data: string;
  /** Train config fields the demo trains with, over the defaults (steps, learning rate, TTT length...). */
  readonly train?: Readonly<Record<string, unknown>>;
  /** Draft vocabulary size of the demo's draft. */
  readonly draftVocabSize?: number;
}
