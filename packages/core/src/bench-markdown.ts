import type { BenchReport, BenchRun } from './schemas/report.js';

const f = (v: number | undefined, digits = 2) => (v === undefined ? '-' : v.toFixed(digits));

/**
 * What the report says about the speed, in words: the speedup as a result only when the
 * measurement is trustworthy; otherwise "not trustworthy", the measured figure as what it is, and
 * why. A report from before rounds (version 1) was not checked and says so.
 */
export function speedupVerdict(r: BenchReport): string[] {
  if (r.speedup === undefined) {
    return r.trustworthy === false
      ? ['**Not trustworthy**: the measured throughput is not a result, because:', ...reasons(r), '']
      : [];
  }
  const interval = r.speedupInterval
    ? `95% CI ${f(r.speedupInterval.low)} to ${f(r.speedupInterval.high)}x`
    : 'no interval';
  const spread = `geometric mean of ${r.rounds.length} rounds, ${interval}`;
  if (r.trustworthy === false)
    return [
      `**Speedup: not trustworthy.** The measured ${f(r.speedup)}x (${spread}) is not a result, because:`,
      ...reasons(r),
      '',
    ];
  if (r.trustworthy === undefined)
    return [`**Speedup (throughput): ${f(r.speedup)}x** (one pass per mode, not checked for trust).`, ''];
  return [
    `**Speedup (throughput): ${f(r.speedup)}x** (${spread}; at most ${f(r.speedupBound)}x, the mean acceptance length); ` +
      `latency speedup ${f(r.latencySpeedup)}x.`,
    '',
  ];
}

const reasons = (r: BenchReport) => r.trustReasons.map((why) => `- ${why}`);

/**
 * The lossless check in words: at temperature 0, how many Eagle3 outputs equal the baseline's
 * token for token (in every round), or why it was not made.
 */
export function losslessCheck(r: BenchReport): string {
  const m = r.outputsMatch;
  if (!m)
    return r.baseline && r.eagle3
      ? `Lossless check: not made (temperature ${r.config.temperature}; outputs are compared at temperature 0).`
      : 'Lossless check: not made (it needs both modes).';
  const at = m.firstMismatch;
  return (
    `Lossless check, temperature 0: ${m.identical} of ${m.compared} Eagle3 outputs equal the baseline's token for token` +
    (r.rounds.length > 1 ? ' in every round' : '') +
    (at
      ? ` (first difference: prompt ${at.prompt}${at.id ? ` [${at.id}]` : ''} at token ${at.position}` +
        `${at.round ? ` in round ${at.round}` : ''}).`
      : '.')
  );
}

/** The report as Markdown: the verdict, a summary table, the rounds, the acceptance per position, the definitions. */
export function benchReportMarkdown(r: BenchReport): string {
  const runs = [r.baseline, r.eagle3].filter((x): x is BenchRun => !!x);
  const lines = [
    `# eaglet bench: ${r.target} on ${r.backend}`,
    '',
    `${r.createdAt} on ${r.machine.hostname} (${r.machine.device}); ` +
      `${r.config.numPrompts} prompts requested, temperature ${r.config.temperature}, ` +
      `output_len ${r.config.outputLen}, num_spec_tokens ${r.config.numSpecTokens}, ` +
      `max_num_seqs ${r.config.maxNumSeqs}, tp ${r.config.tp}, seed ${r.config.seed}, ` +
      `${r.rounds.length || 1} measured round(s).`,
    '',
    ...speedupVerdict(r),
    '| run | prompts | rounds | output tokens | wall s | throughput tok/s | latency mean s | p50 s | p90 s | mean acceptance length |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...runs.map(
      (x) =>
        `| ${x.mode} | ${x.numPrompts} | ${x.rounds} | ${x.outputTokens} | ${f(x.wallSeconds)} | ${f(x.throughput)} | ` +
        `${f(x.latency.mean, 3)} | ${f(x.latency.p50, 3)} | ${f(x.latency.p90, 3)} | ` +
        `${x.spec ? f(x.spec.meanAcceptanceLength) : '-'} |`,
    ),
    '',
  ];
  if (r.rounds.length) {
    lines.push(
      '| round | order | baseline tok/s | eagle3 tok/s | speedup | mean acceptance length | |',
      '|---|---|---|---|---|---|---|',
      ...r.rounds.map(
        (x) =>
          `| ${x.round} | ${x.order.join(', ')} | ${f(x.baseline?.throughput)} | ${f(x.eagle3?.throughput)} | ` +
          `${x.speedup === undefined ? '-' : `${f(x.speedup)}x`} | ${f(x.eagle3?.meanAcceptanceLength)} | ` +
          `${x.disagrees ? 'disagrees with the others' : ''} |`,
      ),
      '',
    );
  }
  const spec = r.eagle3?.spec;
  if (spec) {
    lines.push(
      `Mean acceptance length ${f(spec.meanAcceptanceLength)} = 1 + ${spec.numAcceptedTokens} accepted / ` +
        `${spec.numDrafts} drafts (the +1 is the bonus token of each verification step); ` +
        `draft acceptance rate ${f(100 * spec.draftAcceptanceRate, 1)}% of ${spec.numDraftTokens} draft tokens.`,
      '',
      `| draft position | ${spec.acceptanceRatePerPosition.map((_, i) => i).join(' | ')} |`,
      `|---|${spec.acceptanceRatePerPosition.map(() => '---').join('|')}|`,
      `| acceptance rate | ${spec.acceptanceRatePerPosition.map((a) => f(a, 3)).join(' | ')} |`,
      '',
    );
  }
  lines.push(losslessCheck(r), '');
  lines.push('## Definitions', '', ...Object.entries(r.definitions).map(([k, v]) => `- **${k}**: ${v}`), '');
  lines.push(
    '## Machine',
    '',
    `- device: ${r.machine.device}`,
    ...Object.entries(r.machine.engineVersions).map(([k, v]) => `- ${k}: ${v}`),
    '',
  );
  return lines.join('\n');
}
