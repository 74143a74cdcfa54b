import { z } from 'zod';

/**
 * Hugging Face Hub references. Wherever eaglet takes a model folder (targetModel, draftModel,
 * --model) or a dataset (the jsonl inputs of validate, prepare, regenerate), it also takes a Hub
 * id, as the user's document's *_NAME_OR_PATH parameters do: `org/name`, `org/name@revision`
 * (a branch, tag or commit), or with the `hf://` scheme (`hf://org/name`, `hf://datasets/org/name`).
 * A local path that exists always wins over a Hub id of the same spelling.
 */
export const HubRepoType = z.enum(['model', 'dataset']);
export type HubRepoType = z.infer<typeof HubRepoType>;

const REPO = /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/;

/** The engine's `hub` command: one repository to bring into the local Hub cache. */
export const HubResolveConfig = z.strictObject({
  repo: z.string().regex(REPO, 'a Hub id is `org/name`'),
  /** Branch, tag or commit; absent: the repository's default branch. */
  revision: z.string().min(1).optional(),
  repoType: HubRepoType.default('model'),
});
export type HubResolveConfig = z.infer<typeof HubResolveConfig>;
export type HubRef = z.input<typeof HubResolveConfig>;

/** Where a Hub reference resolved to: a snapshot folder in the cache and its commit. */
export const HubSource = z.strictObject({
  repo: z.string(),
  repoType: HubRepoType,
  /** The revision asked for (absent: the default branch). */
  requested: z.string().optional(),
  /** The commit hash the snapshot holds: what manifests, checkpoints and reports record. */
  revision: z.string(),
  /** The snapshot folder in the Hub cache (HF_HOME). */
  path: z.string(),
});
export type HubSource = z.infer<typeof HubSource>;

/**
 * A Hub reference spelled in `text`, or undefined when it is not one. `hf://datasets/...` and
 * `hf://models/...` name the repository type; otherwise `repoType` (what the caller expects) does.
 */
export function parseHubRef(text: string, repoType: HubRepoType): HubRef | undefined {
  let rest = text.trim();
  let type = repoType;
  if (rest.startsWith('hf://')) {
    rest = rest.slice('hf://'.length);
    const kind = /^(datasets|models)\//.exec(rest);
    if (kind) {
      type = kind[1] === 'datasets' ? 'dataset' : 'model';
      rest = rest.slice(kind[0].length);
    }
  }
  const at = rest.indexOf('@');
  const repo = at < 0 ? rest : rest.slice(0, at);
  const revision = at < 0 ? undefined : rest.slice(at + 1);
  if (!REPO.test(repo) || revision === '') return undefined;
  return { repo, ...(revision ? { revision } : {}), repoType: type };
}
