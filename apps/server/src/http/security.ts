import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { EagletError } from '@eaglet/core';
import type { FastifyRequest } from 'fastify';
import { HttpError } from './errors.js';

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  return mapped ? mapped[1]!.startsWith('127.') : false;
}

/** A token the server can be trusted with: long enough not to be guessed. */
export const MIN_TOKEN_LENGTH = 16;

/** Refuses a configuration that would expose the API without a token. */
export function checkBinding(host: string, token: string | undefined): void {
  if (token !== undefined && token.length < MIN_TOKEN_LENGTH) {
    throw new EagletError(
      'EAGLET_SERVER_TOKEN_WEAK',
      `the server token must be at least ${MIN_TOKEN_LENGTH} characters`,
      { hint: 'make one with: node -e "console.log(crypto.randomBytes(24).toString(\'base64url\'))"' },
    );
  }
  if (!isLoopback(host) && token === undefined) {
    throw new EagletError(
      'EAGLET_SERVER_TOKEN_REQUIRED',
      `listening on ${host} exposes the server beyond this machine, which needs a token`,
      {
        hint: 'pass --token (or set EAGLET_SERVER_TOKEN), or listen on 127.0.0.1 and reach it through an SSH tunnel',
      },
    );
  }
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Constant-time comparison (hashing first makes the lengths equal). */
export function tokenMatches(given: string | undefined, token: string): boolean {
  return given !== undefined && timingSafeEqual(digest(given), digest(token));
}

export const COOKIE = 'eaglet_token';

/** The token a request carries: `Authorization: Bearer`, or the cookie POST /api/session set. */
export function requestToken(request: FastifyRequest): string | undefined {
  const auth = request.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1];
  }
  const cookie = request.headers.cookie;
  if (typeof cookie === 'string') {
    for (const part of cookie.split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0 && part.slice(0, eq).trim() === COOKIE) {
        try {
          return decodeURIComponent(part.slice(eq + 1).trim());
        } catch {
          return undefined;
        }
      }
    }
  }
  return undefined;
}

/**
 * Guards every request. With a token: API routes need it. Without one (loopback only): the Host
 * header must name a loopback address, which stops DNS-rebinding pages from reaching the API.
 * Always: a browser's cross-site request (an Origin that is not this server) is refused, `Origin:
 * null` included (what a sandboxed iframe or a file:// page sends: it could be any page), and
 * state-changing requests must send JSON, which a plain HTML form cannot.
 */
export function guardRequest(request: FastifyRequest, options: { token?: string; isPublic: boolean }): void {
  const host = request.headers.host ?? '';
  if (options.token === undefined && !isLoopback(hostName(host))) {
    throw new HttpError(
      403,
      'EAGLET_FORBIDDEN_HOST',
      `Host "${host}" is not this machine's loopback address`,
      {
        hint: 'open the dashboard as http://127.0.0.1:PORT/',
        issues: [{ in: 'header', path: 'host', reason: 'not a loopback host name' }],
      },
    );
  }
  const origin = request.headers.origin;
  if (typeof origin === 'string') {
    let originHost = '';
    try {
      originHost = new URL(origin).host;
    } catch {
      // unparseable: refused below
    }
    if (originHost !== host) {
      throw new HttpError(403, 'EAGLET_FORBIDDEN_ORIGIN', `cross-origin request from ${origin} refused`, {
        issues: [{ in: 'header', path: 'origin', reason: `not ${host}` }],
      });
    }
  }
  if (options.isPublic) return;
  if (options.token !== undefined && !tokenMatches(requestToken(request), options.token)) {
    throw new HttpError(401, 'EAGLET_UNAUTHORIZED', 'this server needs a token', {
      hint: 'send "Authorization: Bearer TOKEN", or open the dashboard with ?token=TOKEN',
      headers: { 'www-authenticate': 'Bearer realm="eaglet"' },
    });
  }
}

/** The host part of a Host header (`127.0.0.1:8765` -> `127.0.0.1`, `[::1]:80` -> `::1`). */
export function hostName(hostHeader: string): string {
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(hostHeader);
  if (v6) return v6[1]!;
  return hostHeader.replace(/:\d+$/, '');
}
