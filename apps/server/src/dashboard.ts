import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';

/** The dashboard's files: plain ES modules and CSS, no build step (works from src/ and dist/). */
const DASHBOARD_DIR = join(import.meta.dirname, '..', 'dashboard');
const require = createRequire(import.meta.url);

const FILES: Record<string, { file: string; type: string }> = {
  '/': { file: join(DASHBOARD_DIR, 'index.html'), type: 'text/html; charset=utf-8' },
  '/app.js': { file: join(DASHBOARD_DIR, 'app.js'), type: 'text/javascript; charset=utf-8' },
  '/charts.js': { file: join(DASHBOARD_DIR, 'charts.js'), type: 'text/javascript; charset=utf-8' },
  '/format.js': { file: join(DASHBOARD_DIR, 'format.js'), type: 'text/javascript; charset=utf-8' },
  '/results.js': { file: join(DASHBOARD_DIR, 'results.js'), type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: join(DASHBOARD_DIR, 'style.css'), type: 'text/css; charset=utf-8' },
  '/vendor/uPlot.esm.js': {
    file: require.resolve('uplot/dist/uPlot.esm.js'),
    type: 'text/javascript; charset=utf-8',
  },
  '/vendor/uPlot.min.css': {
    file: require.resolve('uplot/dist/uPlot.min.css'),
    type: 'text/css; charset=utf-8',
  },
};

/** The page may load only its own scripts and styles and talk only to this server. */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'", // uPlot positions its cursor and legend with inline styles
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Serves the dashboard page and its assets (public: the page holds no data; the API it calls is guarded). */
export function registerDashboard(app: FastifyInstance): void {
  for (const [url, { file, type }] of Object.entries(FILES)) {
    const body = readFileSync(file);
    app.get(url, { config: { public: true } }, async (_request, reply) =>
      reply.type(type).header('content-security-policy', CSP).header('cache-control', 'no-cache').send(body),
    );
  }
}
