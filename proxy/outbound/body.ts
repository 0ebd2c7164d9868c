/**
 * Request bodies for retries. A retry needs the whole body again, so small
 * bodies (up to `limit`, 64 KiB by default) are read into memory first; a
 * larger or unbounded one streams straight to the first instance and the
 * request is never retried (the bytes are gone). A declared Content-Length
 * above the limit streams at once, without waiting to read the first 64 KiB.
 */
import type { IncomingMessage } from 'node:http';
import { hasBody } from '../http/headers.js';

export { hasBody };

/** A request body as the attempt sends it. */
export type RequestBody =
  /** The whole body (possibly empty): can be sent any number of times. */
  | { readonly kind: 'buffered'; readonly bytes: Buffer }
  /** Bytes already read (`head`), then the rest of `source`: can be sent once. */
  | { readonly kind: 'streamed'; readonly head: readonly Buffer[]; readonly source: IncomingMessage };

const EMPTY: RequestBody = { kind: 'buffered', bytes: Buffer.alloc(0) };

/**
 * Reads `req`'s body up to `limit` bytes. Resolves with the whole body, or
 * with what was read so far and the paused request to stream the rest from.
 * Rejects when the client aborts mid-body.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<RequestBody> {
  if (!hasBody(req)) return Promise.resolve(EMPTY);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.resolve({ kind: 'streamed', head: [], source: req });
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.pause();
        resolve({ kind: 'streamed', head: chunks, source: req });
      }
    };
    const onEnd = (): void => {
      cleanup();
      resolve({ kind: 'buffered', bytes: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) });
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onAborted = (): void => onError(new Error('client aborted the request body'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}
