/** @eaglet/engine: the TypeScript side of the Python compute engine. */
export { type EngineEnv, EngineEnv as EngineEnvSchema, engineEnv } from './env.js';
export { fetchFromHub, type HubOptions, type LocalSource, localSource } from './hub.js';
export { defaultVenv, ENGINE_PYTHON_DIR, eagletHome, pythonPath, resolvePython } from './python.js';
export { type EngineRunOptions, type EngineRunResult, engineArgv, runEngine } from './run.js';
export {
  type EngineEnvOptions,
  type EngineEnvPlan,
  engineRequirements,
  hasNvidiaGpu,
  planEngine,
  type SetupResult,
  setupEngine,
  type TorchChoice,
} from './setup.js';
export { EngineWorker, type StartWorkerOptions, type WorkerReadyInfo } from './worker.js';
