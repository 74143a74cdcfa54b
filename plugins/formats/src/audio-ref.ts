import { isAbsolute, relative, resolve } from 'node:path';

/**
 * Audio references in jsonl files: relative paths resolve against the jsonl file's own folder
 * (so a dataset folder can move as a whole); absolute paths, http(s) URLs and data: URIs are kept.
 */
export function resolveAudioRef(ref: string, baseDir: string): string {
  if (isAbsolute(ref) || /^(https?:|data:)/i.test(ref)) return ref;
  if (ref.startsWith('file://')) return new URL(ref).pathname;
  return resolve(baseDir, ref);
}

/** The inverse, for writing: paths under baseDir become `./relative`, others stay as they are. */
export function relativeAudioRef(ref: string, baseDir: string): string {
  if (!isAbsolute(ref)) return ref;
  const rel = relative(baseDir, ref);
  return rel.startsWith('..') || isAbsolute(rel) ? ref : `./${rel}`;
}

/** `data:audio/wav;base64,...` from an OpenAI `input_audio` part. */
export function dataUri(base64: string, format: string): string {
  return `data:audio/${format};base64,${base64}`;
}
