import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  EagletError,
  type EventSink,
  type HubRef,
  type HubRepoType,
  HubSource,
  parseHubRef,
} from '@eaglet/core';
import { runEngine } from './run.js';

export interface HubOptions {
  events?: EventSink;
  signal?: AbortSignal;
  python?: string;
}

/**
 * Brings a Hub repository into the local Hub cache through the engine's `hub` command (the Hub's
 * own client library: HF_HOME, HF_HUB_OFFLINE, HF_TOKEN and revisions as everywhere else) and
 * returns its snapshot folder and commit. Download progress reaches `events`.
 */
export async function fetchFromHub(ref: HubRef, options: HubOptions = {}): Promise<HubSource> {
  const { done } = await runEngine({
    command: 'hub',
    config: ref,
    ...(options.python ? { python: options.python } : {}),
    ...(options.events ? { onEvent: options.events } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  return HubSource.parse(done.result);
}

/** A local folder or file a `*NameOrPath` input names, and the Hub snapshot it came from. */
export interface LocalSource {
  path: string;
  hub?: HubSource;
}

/**
 * What a model or dataset input names, on this machine: an existing path as it is (a local path
 * wins over a Hub id of the same spelling), else a Hub id (`org/name[@revision]`, `hf://...`)
 * fetched into the Hub cache. Anything else is an error naming the value and what it may be.
 */
export async function localSource(
  value: string,
  repoType: HubRepoType,
  options: HubOptions & { field?: string } = {},
): Promise<LocalSource> {
  if (existsSync(value)) return { path: resolve(value) };
  const ref = parseHubRef(value, repoType);
  if (!ref) {
    throw new EagletError(
      'EAGLET_INPUT_MISSING',
      `${options.field ? `${options.field}: ` : ''}${value} is neither an existing path nor a Hugging Face Hub id`,
      {
        hint: `pass a local ${repoType === 'model' ? 'model folder' : 'file or folder'}, or a Hub id such as org/name or org/name@revision`,
      },
    );
  }
  try {
    const hub = await fetchFromHub(ref, options);
    return { path: hub.path, hub };
  } catch (e) {
    // The value may have been meant as a local path: say that none exists, beside the Hub's answer.
    if (!(e instanceof EagletError) || !e.code.startsWith('EAGLET_HUB_')) throw e;
    throw new EagletError(
      e.code,
      `${options.field ? `${options.field}: ` : ''}no local path ${resolve(value)}, and as a Hub id: ${e.message}`,
      e.hint ? { hint: e.hint } : {},
    );
  }
}
