import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type DataFormat,
  definePlugin,
  EagletError,
  loadPlugins,
  PluginRegistry,
  TOKENS,
} from '../src/index.js';

const format = (name: string): DataFormat => ({
  name,
  description: `${name} format`,
  messagesField: 'messages',
  detect: () => false,
  parse: () => ({ ok: false, issues: [] }),
  serialize: () => ({}),
});

describe('PluginRegistry', () => {
  it('registers and looks up implementations by id', () => {
    const registry = new PluginRegistry();
    registry.use(definePlugin({ name: 'a', version: '1.0.0', formats: [format('x'), format('y')] }));
    expect(registry.format('y').name).toBe('y');
    expect(registry.ids('format')).toEqual(['x', 'y']);
    expect(registry.plugins()).toEqual([
      { name: 'a', version: '1.0.0', targets: [], templates: [], formats: ['x', 'y'], backends: [] },
    ]);
    expect(registry.ownerOf('format', 'x')).toBe('a');
  });

  it('refuses a duplicate id and lists what is known, leaving no partial registration', () => {
    const registry = new PluginRegistry();
    registry.use(definePlugin({ name: 'a', version: '1', formats: [format('x')] }));
    const err = (() => {
      try {
        registry.use(definePlugin({ name: 'b', version: '1', formats: [format('z'), format('x')] }));
      } catch (e) {
        return e as EagletError;
      }
    })();
    expect(err).toBeInstanceOf(EagletError);
    expect(err?.code).toBe('EAGLET_PLUGIN_DUPLICATE');
    expect(err?.message).toContain('data format "x" from plugin "b" is already registered by "a"');
    expect(err?.hint).toContain('known data formats: x');
    expect(registry.ids('format')).toEqual(['x']); // z was not registered either
  });

  it('refuses the same plugin twice', () => {
    const registry = new PluginRegistry();
    registry.use(definePlugin({ name: 'a', version: '1' }));
    expect(() => registry.use(definePlugin({ name: 'a', version: '2' }))).toThrow(/registered twice/);
  });

  it('names the known ids when a lookup fails', () => {
    const registry = new PluginRegistry();
    registry.use(definePlugin({ name: 'a', version: '1', formats: [format('sharegpt')] }));
    expect(() => registry.format('nope')).toThrow(EagletError);
    try {
      registry.format('nope');
    } catch (e) {
      expect((e as EagletError).code).toBe('EAGLET_UNKNOWN_FORMAT');
      expect((e as EagletError).hint).toBe('known data formats: sharegpt');
    }
    expect(() => registry.backend('vllm')).toThrow(/unknown backend "vllm"/);
  });

  it('keeps registries apart (each has its own child container)', () => {
    const a = new PluginRegistry();
    const b = new PluginRegistry();
    a.use(definePlugin({ name: 'a', version: '1', formats: [format('x')] }));
    expect(b.ids('format')).toEqual([]);
  });

  it('resolves implementations from the tsyringe container under their contract tokens', () => {
    const registry = new PluginRegistry();
    registry.use(definePlugin({ name: 'a', version: '1', formats: [format('x'), format('y')] }));
    expect(registry.container.resolveAll<DataFormat>(TOKENS.DataFormat).map((f) => f.name)).toEqual([
      'x',
      'y',
    ]);
  });

  it('swaps an implementation in a scope without touching the parent', () => {
    const registry = new PluginRegistry();
    registry.use(definePlugin({ name: 'a', version: '1', formats: [format('x')] }));
    const scoped = registry.scoped();
    scoped.container.register(TOKENS.DataFormat, { useValue: format('swapped') });
    expect(scoped.ids('format')).toEqual(['swapped']);
    expect(registry.ids('format')).toEqual(['x']);
  });

  it('adds to what the parent has when a plugin is used in a scope', () => {
    const registry = new PluginRegistry();
    registry.use(definePlugin({ name: 'a', version: '1', formats: [format('x')] }));
    const scoped = registry.scoped();
    scoped.use(definePlugin({ name: 'b', version: '1', formats: [format('y')] }));
    expect(scoped.ids('format')).toEqual(['x', 'y']);
    expect(scoped.ownerOf('format', 'x')).toBe('a');
    expect(() => scoped.use(definePlugin({ name: 'c', version: '1', formats: [format('x')] }))).toThrow(
      /already registered by "a"/,
    );
    expect(registry.ids('format')).toEqual(['x']);
    expect(registry.plugins().map((p) => p.name)).toEqual(['a']);
  });
});

describe('loadPlugins', () => {
  const dir = mkdtempSync(join(tmpdir(), 'eaglet-plugins-'));
  const write = (name: string, body: string) => writeFileSync(join(dir, name), body);

  it('loads a plugin file and records the module it came from', async () => {
    write(
      'good.mjs',
      `export function register(registry) {
         registry.use({ name: 'good', version: '0.0.1', formats: [{ name: 'g', description: '', detect: () => false, parse: () => ({}), serialize: () => ({}) }] });
       }`,
    );
    const registry = new PluginRegistry();
    await loadPlugins(registry, ['./good.mjs'], dir);
    expect(registry.plugins()[0]).toMatchObject({ name: 'good', module: './good.mjs', formats: ['g'] });
  });

  it('loads an ESM-only package from node_modules (exports without require)', async () => {
    const pkg = join(dir, 'node_modules', 'esm-only-plugin');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(
      join(pkg, 'package.json'),
      JSON.stringify({ name: 'esm-only-plugin', type: 'module', exports: { '.': { import: './main.js' } } }),
    );
    writeFileSync(
      join(pkg, 'main.js'),
      `export const register = (r) => r.use({ name: 'esm-only-plugin', version: '3.0.0' });`,
    );
    const registry = new PluginRegistry();
    await loadPlugins(registry, ['esm-only-plugin'], dir);
    expect(registry.plugins().map((p) => p.version)).toEqual(['3.0.0']);
  });

  it.each([
    [
      'missing package',
      'not-installed-anywhere',
      'EAGLET_PLUGIN_NOT_FOUND',
      /npm install not-installed-anywhere/,
    ],
    ['missing file', './nope.mjs', 'EAGLET_PLUGIN_NOT_FOUND', /check the path/],
    ['no register export', './noregister.mjs', 'EAGLET_PLUGIN_INVALID', /export function register/],
    ['throws on import', './throws.mjs', 'EAGLET_PLUGIN_BROKEN', /threw while importing/],
    ['throws in register', './badregister.mjs', 'EAGLET_PLUGIN_BROKEN', /documentation/],
  ])('%s gives a coded error with a fix', async (_label, spec, code, hint) => {
    write('noregister.mjs', 'export const plugin = {};');
    write('throws.mjs', 'throw new Error("boom at import");');
    write('badregister.mjs', 'export function register() { throw new Error("boom in register"); }');
    const registry = new PluginRegistry();
    const err = await loadPlugins(registry, [spec], dir).then(
      () => undefined,
      (e: unknown) => e as EagletError,
    );
    expect(err?.code).toBe(code);
    expect(err?.hint).toMatch(hint);
  });
});
