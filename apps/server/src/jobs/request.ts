import { formatPath, isHubSource, type PluginRegistry, pathFields, setAt } from '@eaglet/core';
import { HttpError, invalidRequest } from '../http/errors.js';
import { type PathGuard, PathRefused } from '../paths.js';
import { CreateJobBody, type RequestIssue } from '../schemas.js';
import type { JobKind, JobKindRegistry } from './kind.js';

/** A POST /api/jobs body that passed every check: its kind, optional name and config. */
export interface JobRequest {
  kind: JobKind;
  name?: string;
  /** The config with defaults filled in and every path absolute and inside the roots. */
  config: unknown;
}

/**
 * Checks a POST /api/jobs body: the shape, a known kind, the kind's config schema, every path
 * (the config's and those plugins declare) against the roots, and the kind's own checks (plugin
 * ids). A refusal is a 400 naming each field that is wrong.
 */
export function checkJobRequest(
  body: unknown,
  kinds: JobKindRegistry,
  registry: PluginRegistry,
  guard: PathGuard,
  policy: { hub: boolean } = { hub: false },
): JobRequest {
  const parsed = CreateJobBody.safeParse(body);
  if (!parsed.success) throw invalidRequest('body', parsed.error);
  const { kind: kindName, name, config: rawConfig } = parsed.data;
  const kind = kinds.get(kindName);
  if (!kind) {
    const reason = `unknown job kind "${kindName}" (known: ${kinds.names().join(', ')})`;
    throw new HttpError(400, 'EAGLET_BAD_REQUEST', `invalid body: kind: ${reason}`, {
      issues: [{ in: 'body', path: 'kind', reason }],
      hint: 'GET /api/kinds lists the job kinds and their config schemas',
    });
  }
  const cfg = kind.config.safeParse(rawConfig);
  if (!cfg.success) throw invalidRequest('body', cfg.error, 'config');
  const config = cfg.data as unknown;
  const issues: RequestIssue[] = [];
  const paths = [...pathFields(kind.config, config), ...(kind.pluginPathFields?.(config, registry) ?? [])];
  for (const field of paths) {
    // A model or dataset named by Hub id (no such path under the roots) is fetched into the Hub
    // cache by the flow, when the server allows it; it is not a path to confine.
    if (isHubSource(field, guard.base)) {
      if (!policy.hub)
        issues.push({
          in: 'body',
          path: formatPath(['config', ...field.path]),
          reason: `${field.value} is a Hugging Face Hub id: this server reads only paths inside its roots (start it with --hub to let jobs download from the Hub)`,
        });
      continue;
    }
    try {
      setAt(config, field.path, guard.check(field.value));
    } catch (e) {
      if (!(e instanceof PathRefused)) throw e;
      issues.push({ in: 'body', path: formatPath(['config', ...field.path]), reason: e.message });
    }
  }
  if (issues.length === 0 && kind.check) {
    for (const i of kind.check(config, registry))
      issues.push({ in: 'body', path: i.path ? `config.${i.path}` : 'config', reason: i.reason });
  }
  if (issues.length) {
    throw new HttpError(
      400,
      'EAGLET_BAD_REQUEST',
      `invalid body: ${issues.map((i) => `${i.path}: ${i.reason}`).join('; ')}`,
      { issues },
    );
  }
  return { kind, ...(name ? { name } : {}), config };
}
