/** @eaglet/audio: eaglet's own small audio interface over ffmpeg (fluent-ffmpeg stays behind it). */
export { ALLOWED_CONTAINERS } from './allow-list.js';
export { TRUNCATION_TOLERANCE } from './completeness.js';
export {
  type AudioDecoder,
  type DecodedAudio,
  type DecodeOptions,
  type FfmpegDecoderOptions,
  ffmpegDecoder,
} from './decode.js';
export { type LongAudioPolicy, type Segment, type SegmentOptions, segmentAtPauses } from './long-audio.js';
export { type AudioProbe, probeAudio } from './probe.js';
export { withLocalFile } from './source.js';
export { SileroVad, sileroModelPath, VAD_FRAME } from './vad.js';
