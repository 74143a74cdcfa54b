// The reports a finished job returns, as the job's detail view shows them: a validation report
// (totals, files, problems) and a benchmark report (summary table, throughput and acceptance charts).
import { barChart } from '/charts.js';
import { $, fmtNum, table } from '/format.js';

/** Shows the validation and benchmark reports a job's result holds (itself or one or two levels down). */
export function showResult(job) {
  const r = job.result;
  const bench = find(r, isBenchReport);
  if (bench) showBench(bench);
  const validation = find(r, (x) => 'problems' in x && 'totals' in x && 'byKind' in x);
  if (validation) showValidation(validation);
}

/** A BenchReport (core's schema): a bench job's `report`, or a pipeline's `bench.report`. */
const isBenchReport = (x) => 'backend' in x && 'config' in x && ('baseline' in x || 'eagle3' in x);

/** The first object in a result (itself, or one or two levels down) that passes `test`. */
function find(value, test, depth = 0) {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  if (test(value)) return value;
  if (depth >= 2) return undefined;
  for (const v of Object.values(value)) {
    const hit = find(v, test, depth + 1);
    if (hit) return hit;
  }
  return undefined;
}

function showBench(report) {
  $('d-bench').hidden = false;
  const runs = ['baseline', 'eagle3'].filter((m) => report[m]);
  const rows = [
    ['backend', report.backend],
    ['target', report.target],
    ['device', report.machine?.device ?? ''],
    ...runs.map((m) => [
      `${m} throughput`,
      `${fmtNum(report[m].throughput)} tokens/s (${report[m].outputTokens} tokens in ${fmtNum(report[m].wallSeconds)} s)`,
    ]),
    ...runs.map((m) => [
      `${m} latency`,
      `mean ${fmtNum(report[m].latency.mean)} s, p50 ${fmtNum(report[m].latency.p50)} s, p90 ${fmtNum(report[m].latency.p90)} s`,
    ]),
  ];
  if (report.speedup !== undefined) rows.push(['speedup', speedupText(report)]);
  if (report.rounds?.length)
    rows.push([
      'rounds',
      report.rounds
        .map((r) => {
          const figure =
            r.speedup !== undefined
              ? `${r.speedup.toFixed(2)}x`
              : `${fmtNum((r.baseline ?? r.eagle3).throughput)} tokens/s`;
          return `${r.round}: ${figure}${r.disagrees ? ' (disagrees with the others)' : ''}`;
        })
        .join(', '),
    ]);
  if (report.trustworthy === false) rows.push(['not trustworthy, because', report.trustReasons.join('; ')]);
  const spec = report.eagle3?.spec;
  if (spec)
    rows.push([
      'mean acceptance length',
      `${spec.meanAcceptanceLength.toFixed(2)} (1 + accepted/drafts: ${spec.numAcceptedTokens}/${spec.numDrafts})`,
    ]);
  if (report.outputsMatch)
    rows.push(['outputs equal baseline', `${report.outputsMatch.identical}/${report.outputsMatch.compared}`]);
  $('bench-summary').replaceChildren(table(rows));

  barChart($('chart-throughput'), {
    title: 'throughput',
    unit: 'tokens/s',
    groups: runs.map((m) => ({ label: m, bars: [{ name: m, value: report[m].throughput }] })),
  });
  if (spec) {
    barChart($('chart-acceptance'), {
      title: 'acceptance rate per draft position',
      max: 1,
      format: (v) => v.toFixed(2),
      groups: spec.acceptanceRatePerPosition.map((v, i) => ({
        label: `pos ${i + 1}`,
        bars: [{ name: 'accepted / drafts', value: v }],
      })),
    });
  }
}

/**
 * The speedup in words: a result only when the report found the measurement trustworthy; version 1
 * reports (one pass per mode) were not checked and say so.
 */
function speedupText(report) {
  const x = `${report.speedup.toFixed(2)}x`;
  if (report.trustworthy === false) return `not trustworthy (measured ${x}, not a result)`;
  if (report.trustworthy === undefined) return `${x} (one pass per mode, not checked for trust)`;
  const ci = report.speedupInterval
    ? `95% CI ${report.speedupInterval.low.toFixed(2)} to ${report.speedupInterval.high.toFixed(2)}x, `
    : '';
  return `${x} (${ci}geometric mean of ${report.rounds.length} rounds; at most ${report.speedupBound?.toFixed(2) ?? '?'}x, the mean acceptance length)`;
}

function showValidation(report) {
  $('d-validation').hidden = false;
  const t = report.totals;
  const rows = [
    ['records', `${t.records} (${t.valid} valid, ${t.invalid} invalid)`],
    [
      'problems',
      `${t.problems}${
        Object.keys(report.byKind).length
          ? ` (${Object.entries(report.byKind)
              .map(([k, n]) => `${k} ${n}`)
              .join(', ')})`
          : ''
      }`,
    ],
    ...report.files.map((f) => [
      f.file,
      `${f.format ?? 'unknown format'}: ${f.records} records, ${f.audioFiles} audio files, ${f.audioSeconds.toFixed(1)} s`,
    ]),
  ];
  $('validation-summary').replaceChildren(table(rows));
  const tbody = $('validation-problems').querySelector('tbody');
  tbody.replaceChildren(
    ...report.problems.slice(0, 500).map((p) => {
      const tr = document.createElement('tr');
      for (const v of [p.file.split('/').pop(), p.line, p.path, p.reason]) {
        const td = document.createElement('td');
        td.textContent = String(v);
        tr.append(td);
      }
      return tr;
    }),
  );
}
