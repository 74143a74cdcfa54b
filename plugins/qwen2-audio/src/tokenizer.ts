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

/** Qwen2's pre-tokenizer (NFC, its split regex, byte-level), for folders without tokenizer.json. */
const QWEN2_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

interface AddedToken {
  id: number;
  content: string;
  special: boolean;
}

/** A tokenizer loaded from a model folder, with what a chat template needs beyond TokenizerHandle. */
export interface ModelTokenizer extends TokenizerHandle {
  /** Added (special) token strings, longest first: text containing one of them is ambiguous. */
  readonly addedTokens: readonly string[];
  /** Encodes text that holds no added tokens; `byteEnds[i]` is the UTF-8 end offset of token i. */
  encodeWithOffsets(text: string): { ids: number[]; byteEnds: number[] };
  /** The id of a token string, or a coded error naming the model folder. */
  requireId(token: string): number;
}

const readJson = (path: string) =>
  readJsonFile(path, "the model's tokenizer files") as Record<string, unknown>;

/**
 * Loads a Hugging Face tokenizer from a model folder with tokenizers.js: `tokenizer.json` when the
 * folder has one, otherwise the slow files (`vocab.json`, `merges.txt`, added tokens from
 * `tokenizer_config.json` / `added_tokens.json`) assembled with Qwen2's pre-tokenizer.
 */
export function loadModelTokenizer(modelDir: string): ModelTokenizer {
  const path = (f: string) => join(modelDir, f);
  const configPath = path('tokenizer_config.json');
  const config = existsSync(configPath) ? readJson(configPath) : {};
  let spec: Record<string, unknown>;
  if (existsSync(path('tokenizer.json'))) {
    spec = readJson(path('tokenizer.json'));
  } else if (existsSync(path('vocab.json')) && existsSync(path('merges.txt'))) {
    spec = fromSlowFiles(modelDir, config);
  } else {
    throw new EagletError('EAGLET_TOKENIZER_MISSING', `no tokenizer files in ${modelDir}`, {
      hint: 'the model folder needs tokenizer.json, or vocab.json and merges.txt (a Hugging Face checkpoint)',
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

function fromSlowFiles(modelDir: string, config: Record<string, unknown>): Record<string, unknown> {
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
        { type: 'Split', pattern: { Regex: QWEN2_SPLIT }, behavior: 'Isolated', invert: false },
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
    this.addedTokens = added.map((t) => t.content).sort((a, b) => b.length - a.length);
    const eos = typeof config.eos_token === 'string' ? this.ids.get(config.eos_token) : undefined;
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

  encodeWithOffsets(text: string): { ids: number[]; byteEnds: number[] } {
    const { ids, tokens } = this.tokenizer.encode(text, { add_special_tokens: false });
    // Byte-level BPE: every character of a token string stands for one byte of the input.
    const byteEnds: number[] = [];
    let end = 0;
    for (const t of tokens) {
      end += [...t].length;
      byteEnds.push(end);
    }
    return { ids, byteEnds };
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
