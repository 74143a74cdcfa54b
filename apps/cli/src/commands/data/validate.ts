import type { ValidationReport } from '@eaglet/core';
import { validateData } from '@eaglet/flows';
import { Args, Flags } from '@oclif/core';
import { EagletCommand } from '../../base-command.js';

export default class DataValidate extends EagletCommand {
  static override description =
    `Check jsonl files: every invalid record (file, line, field, reason), missing or unreadable audio, and a summary.
Relative audio paths resolve against the folder of the jsonl file that names them. Exit code 1 when anything is invalid.`;
  static override examples = [
    '<%= config.bin %> data validate train.jsonl',
    '<%= config.bin %> data validate a.jsonl b.jsonl --format sharegpt --json',
  ];
  static override strict = false;
  static override args = {
    files: Args.string({ description: 'jsonl files, folders of them, or Hub dataset ids', required: true }),
  };
  static override flags = {
    format: Flags.string({ description: 'data format, or auto to detect per file', default: 'auto' }),
    for: Flags.string({
      description: 'train: every record needs an assistant reply; regenerate: replies are optional',
      options: ['train', 'regenerate'],
      default: 'train',
    }),
    'skip-audio': Flags.boolean({
      description:
        'do not check audio files (by default each is decoded to its end: allowed, readable, not truncated)',
      default: false,
    }),
    'max-problems': Flags.integer({
      description: 'problems listed on the terminal (all are in --json)',
      default: 200,
    }),
  };

  async run(): Promise<ValidationReport> {
    const { argv, flags } = await this.parse(DataValidate);
    const { registry } = await this.eaglet(flags.config);
    const report = await validateData(
      registry,
      {
        files: argv as string[],
        format: flags.format,
        purpose: flags.for as 'train' | 'regenerate',
        checkAudio: !flags['skip-audio'],
      },
      { events: this.events(), signal: this.stopSignal() },
    );
    if (!this.jsonEnabled()) this.printReport(report, flags['max-problems']);
    if (!report.ok) process.exitCode = 1;
    return report;
  }

  private printReport(report: ValidationReport, max: number): void {
    for (const p of report.problems.slice(0, max)) {
      this.log(
        `${p.file}:${p.line}${p.path ? `: ${p.path}` : ''}: ${p.reason}${p.id ? ` [id ${p.id}]` : ''}`,
      );
    }
    if (report.problems.length > max)
      this.log(`... and ${report.problems.length - max} more (use --json for all)`);
    this.log('');
    for (const f of report.files) {
      this.log(
        `${f.file} [${f.format ?? 'unknown format'}]: ${f.records} records, ${f.valid} valid, ${f.invalid} invalid; ` +
          `${f.audioFiles} audio files, ${f.audioSeconds.toFixed(1)} s`,
      );
    }
    const kinds = Object.entries(report.byKind)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
    const t = report.totals;
    this.log(
      report.ok
        ? `OK: ${t.records} records, all valid.`
        : `INVALID: ${t.invalid} of ${t.records} records have problems (${t.problems} problems: ${kinds}).`,
    );
  }
}
