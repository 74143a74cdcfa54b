import { existsSync, lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { EagletError } from '@eaglet/core';

/** Why a path was refused (the caller names the field). */
export class PathRefused extends Error {}

const MAX_PATH = 4096;

/** True when `child` is `parent` or lies inside it (both absolute, normalised). */
export function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/**
 * Confines file paths to configured roots. A path is allowed when, after resolving `..` and
 * every symlink of its deepest existing ancestor, it lies inside one of the roots (also after
 * resolving the roots' own symlinks). Paths that do not exist yet (outputs) are judged by the
 * folder they would be created in. Checked paths are returned resolved, so the flow receives the
 * same path that was checked.
 *
 * A check cannot stop a symlink created inside a root after the check (time-of-check to time of
 * use); whoever can write into a root is trusted as much as the server's user.
 */
export class PathGuard {
  readonly roots: readonly string[];
  private readonly realRoots: readonly string[];

  constructor(
    roots: readonly string[],
    /** Folders inside the roots that requests may not name (the server's own state). */
    private readonly reserved: readonly string[] = [],
  ) {
    if (roots.length === 0)
      throw new EagletError('EAGLET_SERVER_CONFIG', 'at least one root folder is needed');
    this.roots = roots.map((r) => resolve(r));
    this.realRoots = this.roots.map((r) => {
      if (!existsSync(r))
        throw new EagletError('EAGLET_SERVER_CONFIG', `root folder ${r} does not exist`, {
          hint: 'create it or pass another --root',
        });
      return realpathSync(r);
    });
  }

  /** The first root: relative paths in requests resolve against it. */
  get base(): string {
    return this.roots[0]!;
  }

  /** `input` made absolute against the first root, unchecked (for paths a flow reports). */
  resolve(input: string): string {
    return resolve(this.base, input);
  }

  /** Resolves `input` against the first root and checks it; throws PathRefused with the reason. */
  check(input: string): string {
    if (input.length > MAX_PATH) throw new PathRefused(`path is longer than ${MAX_PATH} characters`);
    if (input.includes('\0')) throw new PathRefused('path contains a NUL byte');
    const abs = resolve(this.base, input);
    if (!this.roots.some((r) => isInside(r, abs))) throw new PathRefused(this.outside(abs));
    const real = realOfDeepestExisting(abs);
    if (!this.realRoots.some((r) => isInside(r, real))) {
      throw new PathRefused(`${abs} leads outside the allowed roots through a symlink (to ${real})`);
    }
    for (const r of this.reserved) {
      if (isInside(resolve(r), abs) || isInside(realOfDeepestExisting(resolve(r)), real))
        throw new PathRefused(`${abs} is inside the server's state folder, which jobs may not use`);
    }
    return abs;
  }

  /** Checks that `path` (already absolute) lies inside `folder` after symlinks; returns the real path. */
  static within(folder: string, path: string): string {
    const realFolder = realpathSync(folder);
    const real = realOfDeepestExisting(path);
    if (!isInside(realFolder, real)) throw new PathRefused(`${path} leads outside ${folder}`);
    return real;
  }

  private outside(abs: string): string {
    return `${abs} is outside the allowed roots (${this.roots.join(', ')})`;
  }
}

/**
 * realpath of the path itself if it exists, else of its deepest existing ancestor plus the rest.
 * A dangling symlink is followed by hand (realpath cannot), so it is judged by where it points.
 */
function realOfDeepestExisting(abs: string, depth = 0): string {
  if (depth > 40) throw new PathRefused(`${abs}: too many levels of symbolic links`);
  let head = abs;
  const tail: string[] = [];
  for (;;) {
    let link = false;
    let exists = true;
    try {
      link = lstatSync(head).isSymbolicLink();
    } catch {
      exists = false;
    }
    if (exists) {
      try {
        return resolve(realpathSync(head), ...tail);
      } catch {
        if (!link) throw new PathRefused(`${head} cannot be resolved`);
        const target = resolve(dirname(head), readlinkSync(head));
        return realOfDeepestExisting(resolve(target, ...tail), depth + 1);
      }
    }
    const parent = dirname(head);
    if (parent === head) return abs;
    tail.unshift(head.slice(parent.length).replace(/^[/\\]/, ''));
    head = parent;
  }
}
