import { type Segment, type SileroVad, segmentAtPauses } from '@eaglet/audio';
import {
  type AudioDecoder,
  type AudioPart,
  audioParts,
  type ChatTemplateSession,
  type ContentPart,
  type Conversation,
  conversationIssues,
  type DataFormat,
  EagletError,
  isEagletError,
  type JsonlLine,
  type PrepareConfig,
  type PreparedManifest,
  type RenderedConversation,
  type TargetModel,
} from '@eaglet/core';
import { type AudioAccess, refusedAudio } from '../audio-access.js';
import type { PreparedRow } from '../prepared-io.js';

/** A rejected record as written to rejects.jsonl. */
export interface RejectLine {
  file: string;
  line: number;
  id?: string;
  /** json | format | field | conversation | audio | long-audio | template | length */
  kind: string;
  code?: string;
  reason: string;
  raw: string;
}

export type AudioAction = PreparedManifest['audioActions'][number];

/** What becomes of one input record: a shard row (with what was done to its audio) or a reject. */
export type Outcome =
  | { ok: true; row: PreparedRow; actions: AudioAction[]; truncated: boolean; audioSeconds: number }
  | { ok: false; reject: RejectLine };

export interface WorkerDeps {
  config: PrepareConfig;
  target: TargetModel;
  session: ChatTemplateSession;
  decoder: AudioDecoder;
  vad: () => Promise<SileroVad>;
  warn: (message: string) => void;
  audioAccess?: AudioAccess;
}

/**
 * Turns one input line into a shard row or a reject. Never throws for a bad record (only for a
 * cancel or a bug). Each audio part is decoded once, then the long-audio policy applies to it:
 * reject, truncate to the encoder's window, or segment at pauses (Silero VAD) into consecutive
 * parts; then the chat template renders the record and the max-length policy applies.
 */
export class RecordWorker {
  constructor(private readonly d: WorkerDeps) {}

  async run(
    rec: JsonlLine,
    file: string,
    baseDir: string,
    format: DataFormat,
    signal?: AbortSignal,
  ): Promise<Outcome> {
    const reject = (kind: string, reason: string, extra: { id?: string; code?: string } = {}): Outcome => ({
      ok: false,
      reject: {
        file,
        line: rec.line,
        ...(extra.id ? { id: extra.id } : {}),
        kind,
        ...(extra.code ? { code: extra.code } : {}),
        reason,
        raw: rec.raw,
      },
    });
    if (!rec.ok) return reject('json', rec.error);
    if (!rec.value || typeof rec.value !== 'object' || Array.isArray(rec.value))
      return reject(
        'json',
        `a record must be a JSON object, got ${Array.isArray(rec.value) ? 'an array' : typeof rec.value}`,
      );
    const parsed = format.parse(rec.value, { file, line: rec.line, baseDir });
    if (!parsed.ok)
      return reject(
        'field',
        parsed.issues.map((i) => (i.path ? `${i.path}: ${i.reason}` : i.reason)).join('; '),
        parsed.id ? { id: parsed.id } : {},
      );
    const conv = parsed.conversation;
    const refused = refusedAudio(conv, format.messagesField, this.d.audioAccess);
    if (refused.length)
      return reject('audio', refused.map((i) => `${i.path}: ${i.reason}`).join('; '), { id: conv.id });
    const issues = conversationIssues(conv, { requireAssistant: true });
    if (issues.length)
      return reject(
        'conversation',
        issues.map((i) => `${i.path.replace(/^messages/, format.messagesField)}: ${i.reason}`).join('; '),
        { id: conv.id },
      );
    try {
      return await this.prepare(conv, signal);
    } catch (e) {
      if (!isEagletError(e)) throw e;
      if (e.code === 'EAGLET_CANCELLED') throw e;
      const kind = e.code.startsWith('EAGLET_AUDIO')
        ? 'audio'
        : e.code === 'EAGLET_LONG_AUDIO'
          ? 'long-audio'
          : e.code === 'EAGLET_TOO_LONG'
            ? 'length'
            : 'template';
      return reject(kind, e.message, { id: conv.id, code: e.code });
    }
  }

  /** A valid conversation -> its row: audio decoded, long-audio policy, rendered, max-length policy. */
  private async prepare(conv: Conversation, signal?: AbortSignal): Promise<Outcome> {
    const { target, session } = this.d;
    const parts = audioParts(conv);
    if (parts.length && !target.audio)
      throw new EagletError(
        'EAGLET_TEMPLATE_INPUT',
        `target ${target.id} takes no audio, the record has ${parts.length} audio parts`,
      );
    const rate = target.audio?.sampleRate ?? 16000;
    const decoded = await this.decodeParts(parts, rate, signal);
    const { clipsPerPart, actions } = await this.applyLongAudioPolicy(conv, parts, decoded, rate);
    // A segmented part becomes consecutive audio parts of the same message.
    let k = 0;
    const messages = conv.messages.map((m) => ({
      ...m,
      content: m.content.flatMap((p): ContentPart[] => {
        if (p.type !== 'audio') return [p];
        const clips = clipsPerPart[k++]!;
        return clips.map((): AudioPart => ({ type: 'audio', audio: p.audio }));
      }),
    }));
    const clips = clipsPerPart.flat();
    const rendered = session.render(
      { ...conv, messages },
      clips.map((c) => ({ samples: c.length })),
    );
    const { inputIds, lossMask, audioTokenCounts, truncated } = this.fitToMaxLength(rendered);
    const keptClips = truncated ? clips.slice(0, audioTokenCounts.length) : clips;
    return {
      ok: true,
      row: {
        id: conv.id,
        sourceFile: conv.source.file,
        sourceLine: conv.source.line,
        inputIds,
        lossMask,
        audio: keptClips.map((c) => Float32Array.from(c)),
        audioTokenCounts,
      },
      actions,
      truncated,
      audioSeconds: keptClips.reduce((n, c) => n + c.length / rate, 0),
    };
  }

  /** Each audio part decoded once (all at once), cut to its clip window when it has one. */
  private decodeParts(parts: AudioPart[], rate: number, signal?: AbortSignal): Promise<Float32Array[]> {
    return Promise.all(
      parts.map(async (part, k) => {
        const audio = await this.d.decoder.decode(part.audio, {
          sampleRate: rate,
          ...(signal ? { signal } : {}),
        });
        let pcm = audio.pcm;
        if (part.start !== undefined || part.end !== undefined) {
          pcm = pcm.subarray(
            Math.round((part.start ?? 0) * rate),
            part.end === undefined ? undefined : Math.round(part.end * rate),
          );
          if (pcm.length === 0)
            throw new EagletError(
              'EAGLET_AUDIO_EMPTY',
              `audio part ${k + 1}: the clip window [${part.start}, ${part.end}] s is empty`,
            );
        }
        return pcm;
      }),
    );
  }

  /**
   * The long-audio policy, per part: a part longer than the encoder's window is rejected,
   * truncated to it, or segmented at pauses into several clips; what was done is listed.
   */
  private async applyLongAudioPolicy(
    conv: Conversation,
    parts: AudioPart[],
    decoded: Float32Array[],
    rate: number,
  ): Promise<{ clipsPerPart: Float32Array[][]; actions: AudioAction[] }> {
    const { config } = this.d;
    const maxSamples = Math.round((this.d.target.audio?.maxSeconds ?? 30) * rate);
    const actions: AudioAction[] = [];
    const clipsPerPart: Float32Array[][] = [];
    for (const [k, pcm] of decoded.entries()) {
      const seconds = pcm.length / rate;
      if (pcm.length <= maxSamples) {
        clipsPerPart.push([pcm]);
        continue;
      }
      const where = { id: conv.id, file: conv.source.file, line: conv.source.line, part: k, seconds };
      if (config.longAudioPolicy === 'reject') {
        throw new EagletError(
          'EAGLET_LONG_AUDIO',
          `audio part ${k + 1} (${parts[k]!.audio}) is ${seconds.toFixed(2)} s, longer than the ${maxSamples / rate} s the encoder sees (long-audio policy: reject)`,
        );
      }
      if (config.longAudioPolicy === 'truncate') {
        clipsPerPart.push([pcm.subarray(0, maxSamples)]);
        actions.push({ ...where, action: 'truncated' });
        continue;
      }
      const vad = await this.d.vad();
      const probs = await vad.probabilities(pcm);
      const { segments, hardCuts } = segmentAtPauses(pcm.length, probs, {
        maxSamples,
        pauseThreshold: config.pauseThreshold,
      });
      clipsPerPart.push(segments.map((s: Segment) => pcm.subarray(s.start, s.end)));
      actions.push({
        ...where,
        action: 'segmented',
        segments: segments.map((s) => [s.start / rate, s.end / rate]),
        hardCuts,
      });
      if (hardCuts > 0) {
        this.d.warn(
          `${conv.source.file}:${conv.source.line}: audio part ${k + 1} has no pause in ${hardCuts} window(s); cut at ${maxSamples / rate} s there`,
        );
      }
    }
    return { clipsPerPart, actions };
  }

  /**
   * The max-length policy: a rendering over maxLength is rejected, or cut there (never through
   * an audio clip's placeholders, keeping only the clips whose placeholders survive). A record
   * with no assistant token left has nothing to train on and is rejected.
   */
  private fitToMaxLength(rendered: RenderedConversation): {
    inputIds: Int32Array;
    lossMask: Uint8Array;
    audioTokenCounts: number[];
    truncated: boolean;
  } {
    const { config } = this.d;
    let { inputIds, lossMask, audioTokenCounts } = rendered;
    let truncated = false;
    if (inputIds.length > config.maxLength) {
      if (config.maxLengthPolicy === 'reject') {
        throw new EagletError(
          'EAGLET_TOO_LONG',
          `${inputIds.length} tokens, more than maxLength ${config.maxLength} (policy: reject)`,
        );
      }
      const audioId = this.audioTokenId();
      const cut = config.maxLength;
      if (audioId !== undefined && inputIds[cut - 1] === audioId && inputIds[cut] === audioId) {
        throw new EagletError(
          'EAGLET_TOO_LONG',
          `${inputIds.length} tokens; cutting at maxLength ${config.maxLength} would split an audio clip's placeholders`,
        );
      }
      inputIds = inputIds.slice(0, config.maxLength);
      lossMask = lossMask.slice(0, config.maxLength);
      truncated = true;
    }
    if (!lossMask.includes(1))
      throw new EagletError(
        'EAGLET_TOO_LONG',
        `no assistant token within maxLength ${config.maxLength}: nothing to train on`,
      );
    if (truncated) {
      // Keep only clips whose placeholders survived truncation.
      const audioId = this.audioTokenId()!;
      let placeholders = inputIds.reduce((n, id) => n + (id === audioId ? 1 : 0), 0);
      const keep: number[] = [];
      for (const c of audioTokenCounts) {
        if (placeholders >= c) {
          keep.push(c);
          placeholders -= c;
        } else break;
      }
      audioTokenCounts = keep;
    }
    return { inputIds, lossMask, audioTokenCounts, truncated };
  }

  private audioTokenId(): number | undefined {
    return this.d.target.audio && this.d.session.tokenizer.tokenId(this.d.target.audio.placeholder);
  }
}
