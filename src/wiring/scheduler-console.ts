/**
 * The web console's server side: `/ui` on the scheduler's API port. The
 * page and its assets are public (they hold no data); everything they show
 * comes from the API with the operator token, which the page asks for once
 * and keeps in the tab's sessionStorage.
 *
 *   GET /ui ─▶ 308 /ui/          GET /ui/ ─▶ index.html       GET /ui/<file> ─▶ app.js, style.css, favicon.svg
 *   files: dist/console/ when its manifest matches the sources (scripts/build.mjs), else built in
 *          memory with esbuild on the first request (src/console/bundle.js); gzip when asked for
 *   headers: a strict Content-Security-Policy (scripts and styles from this origin only, no inline
 *            script, fetches to this origin only, no framing), nosniff, no referrer
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { WeftError } from '../../base/errors.js';
import type { Logger } from '../../base/log.js';
import type { PublicRoutes } from './scheduler-api.js';
import { buildConsole, CONSOLE_FILES, readBuiltConsole } from '../console/bundle.js';

/** Where the console is served. */
export const CONSOLE_PATH = '/ui';

/**
 * The page may load scripts, styles, images and fonts from the scheduler
 * only, call the API only, never be framed, never post a form elsewhere.
 * uPlot sizes its elements through the CSSOM (element.style), which a CSP
 * without 'unsafe-inline' allows; no inline <script> or <style> exists.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

interface Asset {
  type: string;
  body: Buffer;
  gzip: Buffer;
}

/** The repository root: the nearest folder above this file with package.json (src/wiring/ in the sources, dist/ in the bundle). */
function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
}

/** Loads the console's files once: the build's output when fresh, else an in-memory build. */
async function loadAssets(logger: Logger): Promise<Map<string, Asset>> {
  const root = repositoryRoot();
  let files = readBuiltConsole(root);
  if (files === undefined) {
    const startedAt = Date.now();
    const esbuild = await import('esbuild');
    try {
      files = (await buildConsole(root, esbuild)).files;
    } finally {
      await esbuild.stop(); // its service process is not needed again
    }
    logger.info({ ms: Date.now() - startedAt }, 'console: dist/console is missing or stale; built in memory');
  }
  const assets = new Map<string, Asset>();
  for (const [name, body] of files) assets.set(name, { type: CONSOLE_FILES[name as keyof typeof CONSOLE_FILES], body, gzip: gzipSync(body) });
  return assets;
}

/** The console's routes for the scheduler API (src/wiring/scheduler-api.ts `publicRoutes`): public, they hold no data. */
export function consoleRoutes(opts: { logger: Logger }): PublicRoutes {
  let assets: Promise<Map<string, Asset>> | undefined;
  const load = (): Promise<Map<string, Asset>> => {
    assets ??= loadAssets(opts.logger).catch((err: unknown) => {
      assets = undefined; // the next request tries again
      opts.logger.error({ err }, 'console: could not build the page');
      throw new WeftError('WEFT_ERR_API_INTERNAL', 'the console could not be built; see the scheduler log', {});
    });
    return assets;
  };
  const send = async (req: FastifyRequest, reply: FastifyReply, name: string): Promise<Buffer> => {
    const asset = (await load()).get(name);
    if (asset === undefined) throw new WeftError('WEFT_ERR_API_NOT_FOUND', `no console file ${name.slice(0, 100)}`, { key: 'route', value: `GET ${CONSOLE_PATH}/${name.slice(0, 100)}` });
    reply.header('content-type', asset.type);
    reply.header('content-security-policy', CONSOLE_CSP);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    reply.header('cache-control', 'no-cache');
    reply.header('vary', 'accept-encoding');
    if (/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
      reply.header('content-encoding', 'gzip');
      return asset.gzip;
    }
    return asset.body;
  };
  return {
    register(app) {
      const config = { public: true };
      app.get(CONSOLE_PATH, { config }, async (_req, reply) => reply.redirect(`${CONSOLE_PATH}/`, 308));
      app.get(`${CONSOLE_PATH}/`, { config }, async (req, reply) => send(req, reply, 'index.html'));
      app.get(`${CONSOLE_PATH}/:file`, { config }, async (req, reply) => send(req, reply, (req.params as { file: string }).file));
    },
  };
}
