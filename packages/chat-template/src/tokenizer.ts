import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EagletError, readJsonFile, type TokenizerHandle } from '@eaglet/core';
import { Tokenizer } from '@huggingface/tokenizers';

/** Tokenizer files whose bytes define the ids; their sha256 is the tokenizer hash. */
const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'vocab.json',
  'merges.txt',
  'added_tokens.json',
  'special_tokens_map.json',
];

interface AddedToken {
  id: number;
  content: string;
  special: boolean;
}

/** A tokenizer loaded from a model folder, with what a chat template needs beyond TokenizerHandle. */
export interface ModelTokenizer extends TokenizerHandle {
  /** Special added-token strings, longest first: text containing one of them is ambiguous. */
  readonly addedTokens: readonly string[];
  /**
   * The special tokens tokenizer_config.json names (`bos_token`, `eos_token`, `pad_token`, ...),
   * as strings: what transformers passes to a chat template beside the messages.
   */
  readonly specialTokens: Readonly<Record<string, string>>;
  /** The id of a token string, or a coded error naming the model folder. */
  requireId(token: string): number;
}

export interface LoadTokenizerOptions {
  /**
   * For folders with only the slow byte-level BPE files (`vocab.json`, `merges.txt`): the split
   * regex of the family's pre-tokenizer (NFC, this split, byte-level), which those files do not
   * record. Without it such a folder is refused.
   */
  slowFilesSplitRegex?: string;
}

const readJson = (path: string) =>
  readJsonFile(path, "the model's tokenizer files") as Record<string, unknown>;

/**
 * Loads a Hugging Face tokenizer from a model folder with tokenizers.js: `tokenizer.json` when the
 * folder has one, otherwise the slow byte-level BPE files (`vocab.json`, `merges.txt`, added
 * tokens from `tokenizer_config.json` / `added_tokens.json`) assembled with the family's split
 * regex (`options.slowFilesSplitRegex`).
 */
export function loadModelTokenizer(modelDir: string, options: LoadTokenizerOptions = {}): ModelTokenizer {
  const path = (f: string) => join(modelDir, f);
  const configPath = path('tokenizer_config.json');
  const config = existsSync(configPath) ? readJson(configPath) : {};
  let spec: Record<string, unknown>;
  if (existsSync(path('tokenizer.json'))) {
    spec = readJson(path('tokenizer.json'));
  } else if (
    options.slowFilesSplitRegex &&
    existsSync(path('vocab.json')) &&
    existsSync(path('merges.txt'))
  ) {
    spec = fromSlowFiles(modelDir, config, options.slowFilesSplitRegex);
  } else {
    throw new EagletError('EAGLET_TOKENIZER_MISSING', `no tokenizer files in ${modelDir}`, {
      hint: options.slowFilesSplitRegex
        ? 'the model folder needs tokenizer.json, or vocab.json and merges.txt (a Hugging Face checkpoint)'
        : 'the model folder needs tokenizer.json (a Hugging Face checkpoint saved by a fast tokenizer)',
    });
  }
  const hash = createHash('sha256');
  for (const f of TOKENIZER_FILES) {
    if (!existsSync(path(f))) continue;
    hash
      .update(`${f}\0`)
      .update(readFileSync(path(f)))
      .update('\0');
  }
  return new HfTokenizer(spec, config, hash.digest('hex'), modelDir);
}

function fromSlowFiles(
  modelDir: string,
  config: Record<string, unknown>,
  splitRegex: string,
): Record<string, unknown> {
  const vocab = readJson(join(modelDir, 'vocab.json')) as Record<string, number>;
  const merges = readFileSync(join(modelDir, 'merges.txt'), 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#version'));
  const added = new Map<number, AddedToken>();
  const decoder = (config.added_tokens_decoder ?? {}) as Record<
    string,
    { content: string; special?: boolean }
  >;
  for (const [id, t] of Object.entries(decoder))
    added.set(Number(id), { id: Number(id), content: t.content, special: t.special ?? true });
  const addedJson = join(modelDir, 'added_tokens.json');
  if (existsSync(addedJson)) {
    for (const [content, id] of Object.entries(readJson(addedJson) as Record<string, number>))
      if (!added.has(id)) added.set(id, { id, content, special: true });
  }
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [...added.values()]
      .sort((a, b) => a.id - b.id)
      .map((t) => ({ ...t, single_word: false, lstrip: false, rstrip: false, normalized: false })),
    normalizer: { type: 'NFC' },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: splitRegex }, behavior: 'Isolated', invert: false },
        byteLevel,
      ],
    },
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}

class HfTokenizer implements ModelTokenizer {
  readonly size: number;
  readonly eosTokenIds: readonly number[];
  readonly addedTokens: readonly string[];
  readonly specialTokens: Readonly<Record<string, string>>;
  private readonly tokenizer: Tokenizer;
  private readonly ids = new Map<string, number>();

  constructor(
    spec: Record<string, unknown>,
    config: Record<string, unknown>,
    readonly hash: string,
    private readonly modelDir: string,
  ) {
    this.tokenizer = new Tokenizer(spec as never, config as never);
    const model = spec.model as { vocab: Record<string, number> };
    let max = -1;
    for (const [t, id] of Object.entries(model.vocab)) {
      this.ids.set(t, id);
      if (id > max) max = id;
    }
    const added = (spec.added_tokens ?? []) as AddedToken[];
    for (const t of added) {
      this.ids.set(t.content, t.id);
      if (t.id > max) max = t.id;
    }
    this.size = max + 1;
    this.addedTokens = added
      .filter((t) => t.special !== false)
      .map((t) => t.content)
      .sort((a, b) => b.length - a.length);
    this.specialTokens = specialTokensOf(config);
    const eosToken = this.specialTokens.eos_token;
    const eos = eosToken === undefined ? undefined : this.ids.get(eosToken);
    const generation = join(modelDir, 'generation_config.json');
    const fromGeneration = existsSync(generation) ? readJson(generation).eos_token_id : undefined;
    const list = [
      ...(Array.isArray(fromGeneration)
        ? fromGeneration
        : fromGeneration === undefined
          ? []
          : [fromGeneration]),
      ...(eos === undefined ? [] : [eos]),
    ].map(Number);
    this.eosTokenIds = [...new Set(list)];
  }

  encode(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: ArrayLike<number>, options: { skipSpecialTokens?: boolean } = {}): string {
    return this.tokenizer.decode(Array.from(ids), {
      skip_special_tokens: options.skipSpecialTokens ?? false,
    });
  }

  tokenId(token: string): number | undefined {
    return this.ids.get(token);
  }

  requireId(token: string): number {
    const id = this.ids.get(token);
    if (id === undefined) {
      throw new EagletError(
        'EAGLET_TOKENIZER_TOKEN',
        `the tokenizer in ${this.modelDir} has no token ${token}`,
        {
          hint: 'is this the right model folder? its tokenizer files must define the target model special tokens',
        },
      );
    }
    return id;
  }
}

/** Keys of tokenizer_config.json that name a special token (transformers' SPECIAL_TOKENS_ATTRIBUTES). */
const SPECIAL_TOKEN_KEYS = [
  'bos_token',
  'eos_token',
  'unk_token',
  'sep_token',
  'pad_token',
  'cls_token',
  'mask_token',
];

/** The named special tokens of a tokenizer_config.json: a string, or an AddedToken's `content`. */
function specialTokensOf(config: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of SPECIAL_TOKEN_KEYS) {
    const v = config[key];
    const content = typeof v === 'string' ? v : (v as { content?: unknown } | null | undefined)?.content;
    if (typeof content === 'string') out[key] = content;
  }
  return out;
}
