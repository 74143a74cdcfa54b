import { spawnSync } from 'node:child_process';
import { EagletError } from '@eaglet/core';
import { type EngineEnvPlan, planEngine, type SetupResult, setupEngine } from '@eaglet/engine';
import { Flags } from '@oclif/core';
import { EagletCommand } from '../base-command.js';

/** Tools eaglet runs besides Python, and how to get them. */
const TOOLS = [
  {
    bin: 'ffmpeg',
    hint: 'install ffmpeg (Debian/Ubuntu: apt-get install ffmpeg; macOS: brew install ffmpeg; conda: conda install ffmpeg)',
  },
  { bin: 'ffprobe', hint: 'ffprobe ships with ffmpeg: install ffmpeg' },
];

export default class Setup extends EagletCommand {
  static override description =
    `Create the engine's Python environment (torch, transformers, safetensors, pyarrow...) from the engine's declared dependencies.

Idempotent: a complete environment is reused at once. It lives in $EAGLET_HOME (default ~/.cache/eaglet) as venv-<hash>, where the engine finds it; set EAGLET_PYTHON to use an environment of your own instead. Checks that ffmpeg is installed first.`;
  static override examples = [
    '<%= config.bin %> setup',
    '<%= config.bin %> setup --torch cpu        # CPU-only torch (a much smaller download)',
    '<%= config.bin %> setup --torch-index-url https://download.pytorch.org/whl/cu126',
    '<%= config.bin %> setup --dry-run --json   # what it would install, nothing done',
  ];
  static override flags = {
    torch: Flags.string({
      description:
        "torch build: auto (PyPI's wheel: CUDA on Linux x86-64, runs on CPU too), pypi, or cpu (PyTorch's CPU index)",
      options: ['auto', 'pypi', 'cpu'],
    }),
    'torch-index-url': Flags.string({ description: 'pip index to take torch from (overrides --torch)' }),
    python: Flags.string({ description: 'Python that creates the environment (default: python3)' }),
    force: Flags.boolean({ description: 'rebuild the environment even if it is complete' }),
    'dry-run': Flags.boolean({ description: 'print what would be installed, install nothing' }),
  };

  async run(): Promise<{ plan: EngineEnvPlan } | SetupResult> {
    const { flags } = await this.parse(Setup);
    for (const tool of TOOLS) {
      if (spawnSync(tool.bin, ['-version'], { stdio: 'ignore' }).status !== 0)
        throw new EagletError(
          'EAGLET_FFMPEG_MISSING',
          `${tool.bin} is not installed (eaglet decodes audio with it)`,
          {
            hint: tool.hint,
          },
        );
    }
    const options = {
      ...(flags.torch ? { torch: flags.torch as 'auto' | 'pypi' | 'cpu' } : {}),
      ...(flags['torch-index-url'] ? { torchIndexUrl: flags['torch-index-url'] } : {}),
      ...(flags.python ? { python: flags.python } : {}),
    };
    if (process.env.EAGLET_PYTHON) {
      if (!this.jsonEnabled())
        this.log(`EAGLET_PYTHON is set: the engine uses ${process.env.EAGLET_PYTHON}; nothing to create.`);
      return setupEngine(options);
    }
    const plan = planEngine(options);
    if (flags['dry-run']) {
      if (!this.jsonEnabled()) {
        this.log(`environment: ${plan.venv}${plan.complete ? ' (complete)' : ''}`);
        this.log(`python: ${plan.basePython.python} (${plan.basePython.version})`);
        this.log(
          `torch: ${plan.torch.choice} from ${plan.torch.indexUrl}${plan.torch.gpu ? ' (NVIDIA GPU found)' : ''}`,
        );
        for (const step of plan.steps) this.log(`pip install ${step.args.join(' ')}`);
      }
      return { plan };
    }
    const events = this.events();
    let packages = 0;
    const result = await setupEngine({
      ...options,
      ...(flags.force ? { force: true } : {}),
      onLine: (line) => {
        // pip's own lines are the progress: one "Collecting" per package, then downloads and the install.
        if (/^Collecting /.test(line)) packages++;
        if (/^(Collecting|Downloading|Installing|Successfully|creating|installing)/.test(line))
          events({
            type: 'progress',
            task: 'setup',
            done: packages,
            unit: 'package',
            message: line.slice(0, 100),
          });
      },
    });
    if (!this.jsonEnabled()) {
      this.log(
        result.created
          ? `engine environment created: ${result.python}`
          : `engine environment ready: ${result.python}`,
      );
      if (!plan.torch.gpu && plan.torch.choice === 'auto')
        this.log(
          'no NVIDIA GPU found: the engine runs on CPU (`eaglet setup --torch cpu --force` saves the CUDA download).',
        );
      this.log(
        'next: `eaglet doctor` checks everything; `eaglet quickstart` runs the pipeline on CPU in minutes.',
      );
    }
    return result;
  }
}
