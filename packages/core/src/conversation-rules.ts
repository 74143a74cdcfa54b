import type { Conversation } from './schemas/conversation.js';
import type { FieldIssue } from './schemas/issues.js';

export interface ConversationRules {
  /** Training data needs at least one assistant reply with text; regeneration input does not. */
  requireAssistant: boolean;
}

/**
 * Checks beyond the shape that every flow applies the same way: at least one user turn before
 * any assistant turn, a system prompt only first, no empty turns, text-only assistant
 * replies. Paths are canonical
 * (`messages[i]...`); formats map them back to their own field names.
 */
export function conversationIssues(conv: Conversation, rules: ConversationRules): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const firstUser = conv.messages.findIndex((m) => m.role === 'user');
  if (firstUser < 0) issues.push({ path: 'messages', reason: 'no user message' });
  conv.messages.forEach((m, i) => {
    if (m.role === 'system' && i !== 0)
      issues.push({ path: `messages[${i}].role`, reason: 'system message must come first' });
    if (m.content.length === 0) issues.push({ path: `messages[${i}].content`, reason: 'empty message' });
    if (m.role === 'assistant' && (firstUser < 0 || i < firstUser)) {
      issues.push({ path: `messages[${i}].role`, reason: 'assistant message before any user message' });
    }
    m.content.forEach((p, j) => {
      if (p.type === 'audio' && m.role !== 'user') {
        issues.push({
          path: `messages[${i}].content[${j}]`,
          reason: `audio is only allowed in user messages, not ${m.role}`,
        });
      }
      if (p.type === 'text' && p.text.trim() === '' && m.content.length === 1) {
        issues.push({ path: `messages[${i}].content[${j}].text`, reason: 'empty text' });
      }
    });
  });
  if (rules.requireAssistant && !conv.messages.some((m) => m.role === 'assistant')) {
    issues.push({ path: 'messages', reason: 'no assistant reply to train on' });
  }
  return issues;
}
