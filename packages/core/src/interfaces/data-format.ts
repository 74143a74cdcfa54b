import type { Conversation } from '../schemas/conversation.js';
import type { FieldIssue } from '../schemas/issues.js';

export interface ParseContext {
  /** The input file (absolute). */
  file: string;
  /** 1-based line number of the record. */
  line: number;
  /** Folder relative audio paths resolve against: the jsonl file's own folder. */
  baseDir: string;
}

export type ParseResult =
  | { ok: true; conversation: Conversation }
  | { ok: false; issues: FieldIssue[] /** the record's id, where one could be read */; id?: string };

/** A jsonl dialect that eaglet reads and writes. Built-in: openai-conversations, sharegpt, ultrachat. */
export interface DataFormat {
  /** Name used on the command line (`--format sharegpt`). Unique across plugins. */
  readonly name: string;
  /** One line shown by `eaglet plugins`. */
  readonly description: string;
  /** The record field holding the messages (`conversations`), so canonical issue paths (`messages[2]`) map back. */
  readonly messagesField: string;
  /** True when a parsed JSON value has this format's shape; `--format auto` asks each format in turn. */
  detect(value: unknown): boolean;
  /** Parses one record into the canonical conversation, or lists every problem with it. */
  parse(value: unknown, ctx: ParseContext): ParseResult;
  /** Writes a canonical conversation back in this format; audio paths are made relative to `baseDir` where possible. */
  serialize(conversation: Conversation, ctx: { baseDir: string }): unknown;
}
