// The layer rules of eaglet, checked on every `npm test` (tools/checks/boundaries.mjs):
//   apps -> flows -> plugins -> audio/engine -> core, one way.
// Product code is every package's src/ (tests and tools are free to import what they test).
const PRODUCT = '^(packages|plugins|apps)/[^/]+/src/';
const TESTS = '(^|/)(test|tests)/|\\.test\\.ts$';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Import cycles make load order matter and hide which module owns what.',
      from: { path: PRODUCT, pathNot: TESTS },
      to: { circular: true },
    },
    {
      name: 'core-is-the-bottom-layer',
      severity: 'error',
      comment: '@eaglet/core holds the contracts: it imports no other eaglet package, plugin or app.',
      from: { path: '^packages/core/' },
      to: { path: '^(packages/(?!core/)|plugins/|apps/|tools/)' },
    },
    {
      name: 'plugins-do-not-import-each-other',
      severity: 'error',
      comment: 'A plugin depends on core (and the audio/engine packages), never on another plugin.',
      from: { path: '^plugins/([^/]+)/', pathNot: TESTS },
      to: { path: '^plugins/', pathNot: '^plugins/$1/' },
    },
    {
      name: 'plugins-do-not-import-flows-or-apps',
      severity: 'error',
      comment: 'Flows and apps compose plugins, not the other way round.',
      from: { path: '^plugins/', pathNot: TESTS },
      to: { path: '^(packages/flows/|apps/)' },
    },
    {
      name: 'libraries-do-not-import-plugins-or-apps',
      severity: 'error',
      comment: 'audio and engine sit under the plugins; only flows (the composition root) names plugins.',
      from: { path: '^packages/(?!flows/)', pathNot: TESTS },
      to: { path: '^(plugins/|apps/|packages/flows/)' },
    },
    {
      name: 'flows-do-not-import-apps',
      severity: 'error',
      from: { path: '^packages/flows/', pathNot: TESTS },
      to: { path: '^apps/' },
    },
    {
      name: 'product-imports-no-test-fixtures',
      severity: 'error',
      comment: 'What product code needs ships in a product package; tools/fixtures is for tests.',
      from: { path: PRODUCT, pathNot: TESTS },
      to: { path: '^tools/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.base.json' },
    // Workspace packages resolve to their TypeScript sources, as tsc and vitest see them.
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['@eaglet/source', 'import', 'require', 'node', 'default'],
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.json'],
    },
  },
};
