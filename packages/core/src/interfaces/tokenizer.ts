/** A loaded tokenizer, as the flows need it. Implementations wrap a TS tokenizer library. */
export interface TokenizerHandle {
  /** sha256 over the tokenizer files; recorded in manifests so data and models can be matched. */
  readonly hash: string;
  /** Number of ids the tokenizer can produce (base vocabulary plus added tokens). */
  readonly size: number;
  /** Encodes text with special tokens recognised, without adding BOS/EOS. */
  encode(text: string): number[];
  decode(ids: ArrayLike<number>, options?: { skipSpecialTokens?: boolean }): string;
  /** The id of a token string (special or not), or undefined when the vocabulary lacks it. */
  tokenId(token: string): number | undefined;
  /** Ids that end generation. */
  readonly eosTokenIds: readonly number[];
}
