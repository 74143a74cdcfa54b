import type { Conversation, FieldIssue } from '@eaglet/core';

/**
 * Which audio a flow may read. The CLI reads whatever the data names; the HTTP app confines local
 * files to its roots (and refuses remote URLs unless told otherwise), so that a request cannot make
 * the server read, or send on to an endpoint, a file outside them. Throws an Error whose message
 * says why the reference is refused; inline `data:` audio is never asked about.
 */
export type AudioAccess = (ref: string) => void;

/**
 * The audio parts of a parsed conversation that `access` refuses, as issues whose paths use the
 * input's own field names (`conversations[0].content[1]`), each with the refused reference. Empty
 * when every part is allowed or no policy is given.
 */
export function refusedAudio(
  conv: Conversation,
  messagesField: string,
  access?: AudioAccess,
): Array<FieldIssue & { ref: string }> {
  if (!access) return [];
  const issues: Array<FieldIssue & { ref: string }> = [];
  for (const [i, m] of conv.messages.entries()) {
    for (const [j, p] of m.content.entries()) {
      if (p.type !== 'audio' || p.audio.startsWith('data:')) continue;
      try {
        access(p.audio);
      } catch (e) {
        issues.push({ path: audioPartPath(messagesField, i, j), reason: (e as Error).message, ref: p.audio });
      }
    }
  }
  return issues;
}

/** The field path of an audio part, in the input's own field names (`conversations[0].content[1]`). */
export function audioPath(conv: Conversation, ref: string, messagesField: string): string {
  for (const [i, m] of conv.messages.entries()) {
    const j = m.content.findIndex((p) => p.type === 'audio' && p.audio === ref);
    if (j >= 0) return audioPartPath(messagesField, i, j);
  }
  return messagesField;
}

const audioPartPath = (field: string, message: number, part: number) =>
  `${field}[${message}].content[${part}]`;
