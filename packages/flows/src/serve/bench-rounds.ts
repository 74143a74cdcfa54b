import {
  type BenchConfig,
  type BenchMode,
  type BenchSession,
  EagletError,
  type MeasuredRound,
  type TimedPass,
} from '@eaglet/core';
import type { FlowContext } from '../context.js';

/** New tokens per warm-up request: enough to run every kernel of prefill and decode. */
const WARMUP_TOKENS = 16;

/**
 * Runs the benchmark on a loaded session: `config.rounds` rounds, each running every mode once
 * over the same prompts. The order alternates (baseline first in odd rounds, Eagle3 first in even
 * ones), so a slow start, a warm cache or load that comes and goes does not always favour the same
 * mode. Every measured pass comes right after an unmeasured warm-up of the same mode (the first
 * `warmupPrompts` prompts, a few tokens each): the first pass warms kernels and caches, and a later
 * one does not start cold after the other mode ran (vLLM's idle engine, in its own process, is
 * measurably slower on its first requests). Each pass is timed here, around the backend's call:
 * one clock for every backend.
 */
export async function measureRounds(
  session: BenchSession,
  config: Pick<BenchConfig, 'baseline' | 'useEagle' | 'rounds' | 'warmupPrompts' | 'outputLen'>,
  ctx: FlowContext = {},
): Promise<MeasuredRound[]> {
  const modes: BenchMode[] = [
    ...(config.baseline ? (['baseline'] as const) : []),
    ...(config.useEagle ? (['eagle3'] as const) : []),
  ];
  const rounds: MeasuredRound[] = [];
  for (let i = 0; i < config.rounds; i++) {
    const order = i % 2 === 0 ? modes : [...modes].reverse();
    ctx.events?.({
      type: 'log',
      level: 'info',
      message: `round ${i + 1} of ${config.rounds}: ${order.join(', then ')}`,
    });
    const round: MeasuredRound = { order };
    for (const mode of order) {
      if (ctx.signal?.aborted) throw new EagletError('EAGLET_CANCELLED', 'benchmark cancelled');
      if (config.warmupPrompts > 0)
        await session.pass(mode, {
          prompts: config.warmupPrompts,
          maxTokens: Math.min(config.outputLen, WARMUP_TOKENS),
        });
      const start = performance.now();
      const pass = await session.pass(mode);
      round[mode] = { ...pass, wallSeconds: (performance.now() - start) / 1000 } satisfies TimedPass;
    }
    rounds.push(round);
  }
  return rounds;
}
