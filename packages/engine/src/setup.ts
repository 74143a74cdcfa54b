import { EagletError } from '@eaglet/core';
import {
  type EngineEnvOptions,
  type EngineEnvPlan,
  ensureEngineEnv,
  planEngineEnv,
  SetupError,
} from '../setup/python-env.mjs';

export type { EngineEnvOptions, EngineEnvPlan, TorchChoice } from '../setup/python-env.mjs';
export { engineRequirements, hasNvidiaGpu } from '../setup/python-env.mjs';

export interface SetupResult {
  /** The engine's Python interpreter. */
  python: string;
  /** False when a complete environment was already there (or EAGLET_PYTHON names one). */
  created: boolean;
  /** True when EAGLET_PYTHON points the engine at an environment of the user's own. */
  external: boolean;
  plan?: EngineEnvPlan;
}

/** Turns the set-up module's errors into coded EagletErrors (message and fix). */
function coded<T>(work: () => T): T {
  try {
    return work();
  } catch (e) {
    if (e instanceof SetupError) throw new EagletError(e.code, e.message, { hint: e.hint });
    throw e;
  }
}

/** What `setupEngine` would do with these options (nothing is installed). */
export function planEngine(options: EngineEnvOptions = {}): EngineEnvPlan {
  return coded(() => planEngineEnv(options));
}

/**
 * `eaglet setup`: creates the engine's Python environment from the engine's declared
 * dependencies (the code `tools/bootstrap.mjs` runs in a checkout). Idempotent; `onLine` gets
 * pip's output lines as progress.
 */
export async function setupEngine(
  options: EngineEnvOptions & { onLine?: (line: string) => void; force?: boolean } = {},
): Promise<SetupResult> {
  try {
    const r = await ensureEngineEnv(options);
    return r.external
      ? { python: r.python, created: false, external: true }
      : { python: r.python, created: r.created, external: false, plan: r.plan };
  } catch (e) {
    return coded(() => {
      throw e;
    });
  }
}
