/**
 * @eaglet/flows: eaglet's flows composed from the registered plugins. The CLI and the HTTP app
 * are thin layers over these functions; another program can call them the same way.
 */

export { type AudioAccess, refusedAudio } from './audio-access.js';
export {
  backendOptionIssues,
  backendOptionNames,
  parseBackendOptions,
  resolveBackend,
} from './backend-choice.js';
export { type BenchFiles, type BenchOutcome, bench, loadBenchPrompts } from './bench.js';
export { BUILTIN_PLUGINS } from './builtins.js';
export { type CheckStatus, type DoctorCheck, type DoctorReport, doctor } from './doctor.js';
export { type CreateEagletOptions, createEaglet, type Eaglet } from './eaglet.js';
export { Limiter } from './limit.js';
export { claimOutputFolder, LOCK_FILE, makeOutputFolder, type OutputFolder } from './output-folder.js';
export { type PrepareResult, prepareData, type RejectLine } from './prepare.js';
export { PREPARED_SCHEMA, type PreparedRow, readShardBatches, ShardWriter } from './prepared-io.js';
export { throttledProgress } from './progress.js';
export { type QuickstartResult, quickstart } from './quickstart.js';
export { type RegenerateReject, type RegenerateReport, regenerate, temperatureFor } from './regenerate.js';
export { shardName } from './regenerate-output.js';
export { type SafetensorsTensor, writeSafetensors } from './safetensors.js';
export { serveBackend } from './serve-backend.js';
export { describeTarget, type TargetDescription } from './target-info.js';
export {
  type ExportResult,
  exportDraft,
  readVocabShapes,
  resolveDraftConfig,
  resolveTrainConfig,
  type TrainOptions,
  type TrainResult,
  train,
} from './train.js';
export { detectFormat, type FlowContext, type ValidateOptions, validateData } from './validate.js';
export { buildVocab, draftVocabulary, type VocabResult, vocabHash } from './vocab.js';
