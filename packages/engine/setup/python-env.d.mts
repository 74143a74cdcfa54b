/** Types of python-env.mjs (plain JS so that tools/bootstrap.mjs can run it before any build). */
export declare const ENGINE_PYTHON_DIR: string;
export declare const TORCH_INDEXES: { pypi: undefined; cpu: string };

export declare class SetupError extends Error {
  constructor(code: string, message: string, hint: string);
  readonly code: string;
  readonly hint: string;
}

export declare function eagletHome(): string;

export declare function engineRequirements(
  extras?: string[],
  pyproject?: string,
): { deps: string[]; requiresPython: string; minPython: string };

export declare function findBasePython(
  python?: string,
  minPython?: string,
): { python: string; version: string; build: string };

export declare function hasNvidiaGpu(): boolean;

export type TorchChoice = 'auto' | 'pypi' | 'cpu';

export interface EngineEnvOptions {
  /** eaglet's state folder (default: EAGLET_HOME or ~/.cache/eaglet). */
  home?: string;
  /** The Python that creates the environment (default: EAGLET_BOOTSTRAP_PYTHON or python3). */
  python?: string;
  /** Which torch build: `auto`/`pypi` (PyPI's wheel: CUDA on Linux x86-64, runs on CPU) or `cpu`. */
  torch?: TorchChoice;
  /** A pip index for torch (overrides `torch`), e.g. https://download.pytorch.org/whl/cu126. */
  torchIndexUrl?: string;
  /** Optional-dependency groups of the engine's pyproject to install (default: test, plot). */
  extras?: string[];
  /** The requirements file (default: the engine's own python/pyproject.toml). */
  pyproject?: string;
}

export interface EngineEnvPlan {
  home: string;
  venv: string;
  link: string;
  python: string;
  basePython: { python: string; version: string; build: string };
  deps: string[];
  torch: { choice: TorchChoice; indexUrl: string; gpu: boolean };
  steps: Array<{ what: string; args: string[] }>;
  complete: boolean;
}

export declare function planEngineEnv(options?: EngineEnvOptions): EngineEnvPlan;

export declare function ensureEngineEnv(
  options?: EngineEnvOptions & { onLine?: (line: string) => void; force?: boolean },
): Promise<
  | { python: string; created: false; external: true }
  | { python: string; venv: string; created: boolean; external: false; plan: EngineEnvPlan }
>;
