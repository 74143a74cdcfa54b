/**
 * @eaglet/flows: eaglet's flows composed from the registered plugins. The CLI and the HTTP app
 * are thin layers over these functions; another program can call them the same way.
 */

export { type AudioAccess, refusedAudio } from './audio-access.js';
export { type BenchFiles, type BenchOutcome, bench, loadBenchPrompts } from './bench.js';
export { BUILTIN_PLUGINS } from './builtins.js';
export { type CheckStatus, type DoctorCheck, type DoctorReport, doctor } from './doctor.js';
export { type CreateEagletOptions, createEaglet, type Eaglet } from './eaglet.js';
export { Limiter } from './limit.js';
export { type PrepareResult, prepareData, type RejectLine } from './prepare.js';
export { PREPARED_SCHEMA, type PreparedRow, readShardBatches, ShardWriter } from './prepared-io.js';
export { throttledProgress } from './progress.js';
export {
  QUICKSTART_TRAIN_STEPS,
  type QuickstartOptions,
  type QuickstartResult,
  quickstart,
} from './quickstart.js';
export {
  type RegenerateReject,
  type RegenerateReport,
  regenerate,
  shardName,
  temperatureFor,
} from './regenerate.js';
export { type SafetensorsTensor, writeSafetensors } from './safetensors.js';
export { type ServeBackendOptions, serveBackend } from './serve-backend.js';
export { describeTarget, type TargetDescription } from './target-info.js';
export {
  type ExportResult,
  exportDraft,
  readVocabShapes,
  resolveTrainConfig,
  type TrainOptions,
  type TrainResult,
  train,
} from './train.js';
export { detectFormat, type FlowContext, type ValidateOptions, validateData } from './validate.js';
export { buildVocab, draftVocabulary, type VocabResult, vocabHash } from './vocab.js';
