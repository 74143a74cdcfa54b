/** @eaglet/engine: the TypeScript side of the Python compute engine. */
export { type EngineEnv, EngineEnv as EngineEnvSchema, engineEnv } from './env.js';
export { ENGINE_PYTHON_DIR, defaultVenv, eagletHome, pythonPath, resolvePython } from './python.js';
export { type EngineRunOptions, type EngineRunResult, engineArgv, runEngine } from './run.js';
