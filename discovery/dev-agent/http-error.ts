/**
 * Consul answers API errors as plain text with a status code (no JSON
 * envelope), and the `consul` npm client turns a short text/plain body into
 * the error's message. The dev agent does the same so clients see the same
 * errors against it as against a real agent.
 */

/** An HTTP error answered as `text/plain` with Consul's wording. */
export class ConsulHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ConsulHttpError';
  }
}

/** 400 with Consul's message. */
export function badRequest(message: string): ConsulHttpError {
  return new ConsulHttpError(400, message);
}

/** 404 with Consul's message. */
export function notFound(message: string): ConsulHttpError {
  return new ConsulHttpError(404, message);
}

/** 500: what Consul answers for errors raised behind its RPC layer (invalid session, bad TTL, ...). */
export function serverError(message: string): ConsulHttpError {
  return new ConsulHttpError(500, message);
}
