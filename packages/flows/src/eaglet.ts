import { ffmpegDecoder } from '@eaglet/audio';
import {
  type EagletPlugin,
  type LoadedConfigFile,
  loadConfigFile,
  loadPlugins,
  PluginRegistry,
} from '@eaglet/core';
import { BUILTIN_PLUGINS } from './builtins.js';

export interface CreateEagletOptions {
  /** Folder the config file is searched from (default: process.cwd()). */
  cwd?: string;
  /** An explicit config file instead of the search. */
  configFile?: string;
  /** Extra plugins: module specifiers (resolved from the config's folder) or plugin objects. */
  plugins?: ReadonlyArray<string | EagletPlugin>;
  /** Override the config's `builtins`. */
  builtins?: boolean;
}

/** A configured eaglet: the registry holding every loaded plugin, and the config it came from. */
export interface Eaglet {
  registry: PluginRegistry;
  config: LoadedConfigFile;
}

/**
 * Builds the registry the flows run on: eaglet's services (the ffmpeg audio decoder), then the
 * built-in plugins (unless turned off), then the config file's plugins, then any given here. This
 * is how another repo adds its own target model:
 *
 *   const eaglet = await createEaglet({ plugins: [myTargetPlugin()] });
 *   await validateData(eaglet.registry, { files: ['data.jsonl'] });
 */
export async function createEaglet(options: CreateEagletOptions = {}): Promise<Eaglet> {
  const cwd = options.cwd ?? process.cwd();
  const config = await loadConfigFile(cwd, options.configFile);
  const registry = new PluginRegistry();
  registry.provide('audioDecoder', ffmpegDecoder);
  if (options.builtins ?? config.config.builtins) {
    for (const builtin of BUILTIN_PLUGINS)
      await registry.loadingFrom(builtin.module, () => builtin.register(registry));
  }
  await loadPlugins(registry, config.config.plugins, config.dir);
  for (const plugin of options.plugins ?? []) {
    if (typeof plugin === 'string') await loadPlugins(registry, [plugin], cwd);
    else registry.use(plugin);
  }
  return { registry, config };
}
