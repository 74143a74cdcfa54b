/**
 * @eaglet/flows: eaglet's flows composed from the registered plugins. The CLI and the HTTP app
 * are thin layers over these functions; another program can call them the same way.
 */

export { BUILTIN_PLUGINS } from './builtins.js';
export type { FlowContext } from './context.js';
export { type AudioAccess, refusedAudio } from './data/audio-access.js';
export { type CaptureResult, captureData, dataFolderKind } from './data/capture.js';
export { detectFormat } from './data/detect-format.js';
export { type PrepareResult, prepareData, type RejectLine } from './data/prepare/prepare.js';
export { PREPARED_SCHEMA, type PreparedRow, readShardBatches, ShardWriter } from './data/prepared-io.js';
export {
  type RegenerateReject,
  type RegenerateReport,
  regenerate,
  temperatureFor,
} from './data/regenerate/regenerate.js';
export { shardName } from './data/regenerate/regenerate-output.js';
export { type ValidateOptions, validateData } from './data/validate.js';
export { buildVocab, draftVocabulary, readVocabShapes, type VocabResult, vocabHash } from './data/vocab.js';
export { type CheckStatus, type DoctorCheck, type DoctorReport, doctor } from './doctor.js';
export { type CreateEagletOptions, createEaglet, type Eaglet } from './eaglet.js';
export { demoTarget, type QuickstartResult, quickstart } from './quickstart/quickstart.js';
export {
  backendOptionIssues,
  backendOptionNames,
  parseBackendOptions,
  resolveBackend,
} from './serve/backend-choice.js';
export { type BenchFiles, type BenchOutcome, bench, loadBenchPrompts } from './serve/bench.js';
export { serveBackend } from './serve/serve-backend.js';
export { describeTarget, type TargetDescription } from './target-info.js';
export { resolveDraftConfig } from './train/draft-config.js';
export { type ExportResult, exportDraft } from './train/export.js';
export { resolveTrainConfig, type TrainOptions, type TrainResult, train } from './train/train.js';
export { Limiter } from './util/limit.js';
export { claimOutputFolder, LOCK_FILE, makeOutputFolder, type OutputFolder } from './util/output-folder.js';
export { throttledProgress } from './util/progress.js';
export { type SafetensorsTensor, writeSafetensors } from './util/safetensors.js';
