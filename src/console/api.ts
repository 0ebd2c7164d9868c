/**
 * The console's client of the scheduler API: same origin, the operator
 * token from sessionStorage in the Authorization header (never in a URL,
 * never in localStorage: it ends with the browser tab).
 */
import type {
  ApiError,
  IntentionListResponse,
  JobAutoscaleResponse,
  JobListResponse,
  JobStatusResponse,
  NodeListResponse,
  SplitListResponse,
  StatsResponse,
} from '../../base/contracts/scheduler-api.js';

const TOKEN_KEY = 'weft.token';
/** Longest wait for one API answer. */
const TIMEOUT_MS = 10_000;

/** The token given in the page, if any. */
export function savedToken(): string | undefined {
  return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
}

export function saveToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** An API answer that was not 2xx: the API's coded error. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiError | undefined,
  ) {
    super(body === undefined ? `HTTP ${status}` : `${body.code}: ${body.message}`);
  }
}

/** GET a JSON route of the API. */
export async function get<T>(path: string): Promise<T> {
  const token = savedToken();
  const res = await fetch(path, {
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    cache: 'no-store',
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!res.ok) throw new ApiFailure(res.status, body as ApiError | undefined);
  return body as T;
}

const seg = encodeURIComponent;

/** The routes the console reads. */
export const routes = {
  stats: (windowSeconds: number) => get<StatsResponse>(`/v1/stats?window=${windowSeconds}`),
  jobs: () => get<JobListResponse>('/v1/jobs'),
  jobStatus: (job: string) => get<JobStatusResponse>(`/v1/jobs/${seg(job)}/status`),
  autoscale: (job: string) => get<JobAutoscaleResponse>(`/v1/jobs/${seg(job)}/autoscale`),
  nodes: () => get<NodeListResponse>('/v1/nodes'),
  intentions: () => get<IntentionListResponse>('/v1/intentions'),
  splits: () => get<SplitListResponse>('/v1/splits'),
};
