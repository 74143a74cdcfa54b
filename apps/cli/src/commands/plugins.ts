import type { PluginInfo } from '@eaglet/core';
import { EagletCommand } from '../base-command.js';

export default class Plugins extends EagletCommand {
  static override description =
    'List loaded plugins and what they register (targets, templates, formats, backends).';
  static override examples = ['<%= config.bin %> plugins', '<%= config.bin %> plugins --json'];

  async run(): Promise<{ plugins: readonly PluginInfo[] }> {
    const { flags } = await this.parse(Plugins);
    const { registry, config } = await this.eaglet(flags.config);
    const plugins = registry.plugins();
    if (!this.jsonEnabled()) {
      this.log(`config: ${config.path ?? '(none; built-ins only)'}`);
      for (const p of plugins) {
        this.log(`\n${p.name} ${p.version}${p.module ? `  (${p.module})` : ''}`);
        const rows: [string, string[]][] = [
          ['targets', p.targets],
          ['templates', p.templates],
          ['formats', p.formats],
          ['backends', p.backends],
        ];
        for (const [label, ids] of rows) if (ids.length) this.log(`  ${label.padEnd(10)} ${ids.join(', ')}`);
      }
    }
    return { plugins };
  }
}
