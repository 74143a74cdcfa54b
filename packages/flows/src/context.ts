import type { EventSink } from '@eaglet/core';
import type { AudioAccess } from './data/audio-access.js';

/** What every flow takes besides its config: where its events go, a stop signal, an audio policy. */
export interface FlowContext {
  events?: EventSink;
  signal?: AbortSignal;
  /** Refuses audio the caller may not read (the HTTP app: files outside its roots); default: any. */
  audioAccess?: AudioAccess;
}
