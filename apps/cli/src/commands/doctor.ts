import { type DoctorReport, doctor } from '@eaglet/flows';
import { EagletCommand } from '../base-command.js';

const MARK = { ok: '✓', warn: '!', fail: '✗' } as const;

export default class Doctor extends EagletCommand {
  static override description =
    'Check Node, ffmpeg, the engine Python environment and its packages, CUDA/GPUs and backends.';
  static override examples = ['<%= config.bin %> doctor'];

  async run(): Promise<DoctorReport> {
    const { flags } = await this.parse(Doctor);
    const { registry, config } = await this.eaglet(flags.config);
    const report = await doctor(registry, {
      ...(config.config.python ? { python: config.config.python } : {}),
    });
    if (!this.jsonEnabled()) {
      for (const c of report.checks) {
        this.log(`${MARK[c.status]} ${c.name.padEnd(18)} ${c.detail}`);
        if (c.hint && c.status !== 'ok') this.log(`  ${''.padEnd(18)} → ${c.hint}`);
      }
      this.log(report.ok ? '\neaglet is ready.' : '\nsome required parts are missing (✗ above).');
    }
    if (!report.ok) process.exitCode = 1;
    return report;
  }
}
