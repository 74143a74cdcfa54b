/** @eaglet/audio: eaglet's own small audio interface over ffmpeg (fluent-ffmpeg stays behind it). */
export { type AudioProbe, probeAudio } from './probe.js';
export { withLocalFile } from './source.js';
