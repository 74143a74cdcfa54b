import { EagletError } from '@eaglet/core';

/**
 * The audio eaglet opens, as one closed list shared by every path that reads audio (validate,
 * prepare, regenerate, bench, the backends, the HTTP app): ffmpeg demuxers for the containers and
 * decoders for the codecs. Anything else is refused before a sample is read. The reason is
 * safety as much as tidiness: some demuxers follow references (an HLS playlist or a concat list
 * names other files, which ffmpeg would open), so a record could make eaglet read, and write into
 * a shard, a file it was never given.
 *
 * ffmpeg enforces the lists itself (`-format_whitelist`, `-codec_whitelist`, and
 * `-protocol_whitelist file`: no network, no pipes, no nested protocols), and the probe's names are
 * checked against the same lists, so every caller decides alike.
 */

/** Allowed containers: ffmpeg demuxer name -> what users call it. */
const CONTAINERS: Record<string, string> = {
  wav: 'wav',
  flac: 'flac',
  mp3: 'mp3',
  ogg: 'ogg (vorbis, opus)',
  mov: 'm4a/mp4',
  matroska: 'webm/mka',
  aac: 'aac (adts)',
};

/** Allowed codecs (ffprobe's codec_name), each with the ffmpeg decoders that may decode it. */
const CODECS: Record<string, string[]> = {
  flac: ['flac'],
  mp3: ['mp3float', 'mp3'],
  aac: ['aac', 'aac_fixed'],
  alac: ['alac'],
  opus: ['opus', 'libopus'],
  vorbis: ['vorbis', 'libvorbis'],
  ...Object.fromEntries(
    [
      's16le',
      's16be',
      's24le',
      's24be',
      's32le',
      's32be',
      'f32le',
      'f32be',
      'f64le',
      'f64be',
      'u8',
      's8',
      'alaw',
      'mulaw',
    ].map((p) => [`pcm_${p}`, [`pcm_${p}`]]),
  ),
};

/** Demuxers that read other files or URLs named inside the input: named as such in refusals. */
const FOLLOWS_REFERENCES = new Set(['hls', 'concat', 'dash', 'ffconcat', 'image2', 'tee', 'imf']);

/** The containers eaglet decodes, as users name them (for messages and docs). */
export const ALLOWED_CONTAINERS: readonly string[] = Object.values(CONTAINERS);

/**
 * ffmpeg/ffprobe input options that enforce the allow-list: local files only, allowed demuxers
 * only, and (for decoding) allowed decoders only. ffprobe gets no codec list: it opens a decoder
 * for every stream, and an mp3's cover picture would then fail the whole probe; the probe checks
 * the audio stream's codec by name instead.
 */
export function ffmpegInputOptions(tool: 'ffmpeg' | 'ffprobe'): string[] {
  const options = ['-protocol_whitelist', 'file', '-format_whitelist', Object.keys(CONTAINERS).join(',')];
  if (tool === 'ffmpeg') options.push('-codec_whitelist', Object.values(CODECS).flat().join(','));
  return options;
}

/** The input name to hand ffmpeg: an explicit `file:` URL, so no path is ever read as a protocol. */
export const ffmpegInput = (path: string): string => `file:${path}`;

/**
 * The refusal for a probed container and codec, or undefined when both are allowed. `format` is
 * ffprobe's format_name (a demuxer may list several names: `mov,mp4,m4a,3gp,3g2,mj2`).
 */
export function refusal(path: string, format: string, codec: string | undefined): EagletError | undefined {
  if (!format.split(',').some((name) => name in CONTAINERS)) return refusedContainer(path, format);
  if (codec !== undefined && !(codec in CODECS)) return refusedCodec(path, codec);
  return undefined;
}

/**
 * The refusal ffmpeg or ffprobe reported on stderr (`[hls @ 0x…] Format not on whitelist`,
 * `Codec (png) not on whitelist`), or undefined when it reported none. Call it only when the run
 * failed: a refused decoder for a stream that was not asked for (an mp3's cover picture) is
 * logged too, and harmless.
 */
export function refusalInLog(path: string, stderr: string): EagletError | undefined {
  const format = /\[([\w,]+) @ [^\]]*\] Format not on whitelist/.exec(stderr);
  if (format) return refusedContainer(path, format[1]!);
  const codecs = [...stderr.matchAll(/Codec \(([\w]+)\) not on whitelist/g)].map((m) => m[1]!);
  if (codecs.length && /Error while opening decoder|Error opening (?:input|decoder)/.test(stderr))
    return refusedCodec(path, codecs.at(-1)!);
  return undefined;
}

const ALLOWED_CODECS = [...Object.keys(CODECS).filter((c) => !c.startsWith('pcm_')), 'pcm'].join(', ');
const HINT = 'convert it to a plain audio file, e.g. `ffmpeg -i IN -ac 1 OUT.flac`';

function refusedContainer(path: string, format: string): EagletError {
  const follows = format.split(',').some((name) => FOLLOWS_REFERENCES.has(name));
  return new EagletError(
    'EAGLET_AUDIO_REFUSED',
    `${path}: container "${format}" is not one eaglet decodes${follows ? ' (it names other files or URLs, which eaglet never opens)' : ''}; allowed: ${ALLOWED_CONTAINERS.join(', ')}`,
    { hint: HINT },
  );
}

function refusedCodec(path: string, codec: string): EagletError {
  return new EagletError(
    'EAGLET_AUDIO_REFUSED',
    `${path}: audio codec "${codec}" is not one eaglet decodes; allowed: ${ALLOWED_CODECS}`,
    { hint: HINT },
  );
}
