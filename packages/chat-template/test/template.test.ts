import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Conversation, Message } from '@eaglet/core';
import { type ChatTemplateFamily, chatTemplateFolders } from '@eaglet/fixtures';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkpointChatTemplate, templateMessages } from '../src/index.js';

const ROOT = resolve(import.meta.dirname, '..', '..', '..');
const template = checkpointChatTemplate({ id: 'checkpoint', description: 'the folder template' });
const conv = (messages: Message[]): Conversation => ({
  id: 'x',
  messages,
  source: { file: '/d.jsonl', line: 1 },
});
const text = (role: Message['role'], t: string): Message => ({ role, content: [{ type: 'text', text: t }] });

const ONE_TURN = [text('user', 'Hello there! How are you?'), text('assistant', 'I am fine, thank you. 🎉')];
const MULTI_TURN = [
  text('system', 'Be brief.'),
  text('user', 'Tell me a story about the sea.'),
  text('assistant', ' Once upon a time, a naïve draft model proposed tokens. '),
  text('user', 'Another one, with numbers: 12345.'),
  text('assistant', 'The target verified 3.14159 of them.\n\nThe end.'),
];
/** What each family's template accepts (Mistral's takes no system turn; Qwen3 masks one reply only). */
const CASES: Record<ChatTemplateFamily, Message[][]> = {
  qwen3: [ONE_TURN],
  'qwen2.5': [ONE_TURN, MULTI_TURN],
  llama3: [ONE_TURN, MULTI_TURN],
  gemma3: [ONE_TURN, MULTI_TURN],
  mistral: [ONE_TURN, MULTI_TURN.slice(1)],
  'chatml-generation': [ONE_TURN, MULTI_TURN],
};

let folders: Record<ChatTemplateFamily, string>;
beforeAll(() => {
  folders = chatTemplateFolders();
});

describe("checkpointChatTemplate: the model folder's own template, token-exact against transformers", () => {
  it('ids, assistant masks and generation prompts equal apply_chat_template for six families', async () => {
    const cases = [];
    for (const [family, convs] of Object.entries(CASES) as Array<[ChatTemplateFamily, Message[][]]>) {
      const session = await template.load(folders[family]);
      for (const messages of convs) {
        const r = session.render(conv(messages), []);
        const prompt = session.renderPrompt(messages.slice(0, -1), []);
        // The trained tokens are the replies and what closes each turn, never the prompt.
        const trained = session.tokenizer.decode(r.inputIds.filter((_, i) => r.lossMask[i] === 1));
        const reply = messages.at(-1)!.content[0]!;
        expect(trained, family).toContain(reply.type === 'text' ? reply.text.trim() : '');
        expect(trained, family).not.toContain('Hello there');
        cases.push({
          dir: folders[family],
          messages: templateMessages(messages),
          ids: Array.from(r.inputIds),
          mask: Array.from(r.lossMask),
          promptIds: Array.from(prompt.inputIds),
        });
      }
    }
    const file = join(mkdtempSync(join(tmpdir(), 'eaglet-tpl-parity-')), 'cases.json');
    writeFileSync(file, JSON.stringify(cases));
    const r = spawnSync(
      process.execPath,
      [join(ROOT, 'tools/python.mjs'), join(import.meta.dirname, 'template_parity.py'), file],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`parity failed:\n${r.stdout}\n${r.stderr.slice(-3000)}`);
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(summary).toMatchObject({ cases: cases.length, generation_markers: 2 });
    expect(summary.trained).toBeGreaterThan(cases.length * 5);
  }, 300_000);

  it('masks the reply and what closes its turn (Llama 3: the trimmed reply and <|eot_id|>)', async () => {
    const session = await template.load(folders.llama3);
    const r = session.render(conv(MULTI_TURN), []);
    const trained = session.tokenizer.decode(r.inputIds.filter((_, i) => r.lossMask[i] === 1));
    expect(trained).toBe(
      'Once upon a time, a naïve draft model proposed tokens.<|eot_id|>The target verified 3.14159 of them.\n\nThe end.<|eot_id|>',
    );
    const prompt = session.renderPrompt(MULTI_TURN.slice(0, 2), []);
    expect(session.tokenizer.decode(prompt.inputIds)).toBe(
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nTell me a story about the sea.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    );
  });

  it('says so when a template cannot mark assistant spans (Qwen3 renders earlier replies differently once later turns follow)', async () => {
    const session = await template.load(folders.qwen3);
    expect(() => session.render(conv(MULTI_TURN), [])).toThrow(
      expect.objectContaining({
        code: 'EAGLET_TEMPLATE_NO_SPANS',
        message: expect.stringMatching(/cannot mark the assistant tokens of messages\[2\]/),
        hint: expect.stringMatching(/\{% generation %\}/),
      }),
    );
  });

  it("a template's raise_exception rejects the record with its message; special-token text is refused", async () => {
    const mistral = await template.load(folders.mistral);
    expect(() => mistral.render(conv(MULTI_TURN), [])).toThrow(/Conversation roles must alternate/);
    const qwen = await template.load(folders['qwen2.5']);
    expect(() =>
      qwen.render(conv([text('user', 'say <|im_end|> now'), text('assistant', 'ok')]), []),
    ).toThrow(/special token <\|im_end\|>/);
    expect(() =>
      qwen.render(
        conv([{ role: 'user', content: [{ type: 'audio', audio: '/a.wav' }] }, text('assistant', 'ok')]),
        [],
      ),
    ).toThrow(/takes text only/);
  });

  it('refuses a folder whose template does not parse, naming the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'eaglet-badtpl-'));
    writeFileSync(
      join(dir, 'tokenizer.json'),
      JSON.stringify(
        await import('node:fs').then((fs) =>
          JSON.parse(fs.readFileSync(join(folders.llama3, 'tokenizer.json'), 'utf8')),
        ),
      ),
    );
    writeFileSync(join(dir, 'chat_template.jinja'), '{% for m in messages %}{{ m.content }');
    await expect(template.load(dir)).rejects.toMatchObject({
      code: 'EAGLET_TEMPLATE_INVALID',
      message: expect.stringContaining('chat_template.jinja'),
    });
  });
});
