/**
 * The proxy's Prometheus metrics (`weft_proxy_*`), registered on a registry
 * the caller passes (the process registry of base/metrics.ts in production, a
 * fresh one per test). Both directions share one set, told apart by the
 * `direction` label, so a dashboard sums or splits them with one query.
 *
 * Hot path: a request touches no prom-client code. prom-client's `inc` and
 * `observe` validate and hash the label set on every call (~4% of a saturated
 * proxy's CPU), so per-request figures are plain numbers on handles bound
 * once per route (`RouteMetrics`) or destination (`InFlight`), and the
 * registry reads them at scrape time (`collect()`, `ScrapedHistogram`).
 * Names, labels, types and values are what prom-client's own classes showed.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { type LatencyCounts, ScrapedHistogram } from './scraped-histogram.js';

/** Which stack a sample comes from. */
export type Direction = 'inbound' | 'outbound';

/** The labels that identify one route: who called which instance. */
export interface RouteLabels {
  readonly direction: Direction;
  /** The calling service ('unknown' when the caller has no identity, e.g. an outbound app). */
  readonly source: string;
  readonly destination: string;
  readonly version: string;
  readonly instance: string;
}

/** Connections of one pool, as reported by its owner at scrape time. */
export interface PoolSample {
  readonly destination: string;
  readonly active: number;
  readonly idle: number;
}

/** Latency buckets in seconds: sub-millisecond local hops up to the 15 s default deadline. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15];

const ROUTE = ['direction', 'source', 'destination', 'version', 'instance'] as const;

/** The `weft_proxy_*` metric family, plus cached per-route handles. */
export class ProxyMetrics {
  /** weft_proxy_requests_total{direction,source,destination,version,instance,code}: answered requests. */
  readonly requests: Counter<'direction' | 'source' | 'destination' | 'version' | 'instance' | 'code'>;
  /** weft_proxy_request_duration_seconds{direction,source,destination,version}: request start to response end. */
  readonly duration: ScrapedHistogram;
  /** weft_proxy_requests_in_flight{direction,destination}: read from the `InFlight` handles at scrape time. */
  readonly inFlight: Gauge<'direction' | 'destination'>;
  /** weft_proxy_retries_total{destination,reason}: retry attempts made (reason: what failed, e.g. 503, reset, connect). */
  readonly retries: Counter<'destination' | 'reason'>;
  /** weft_proxy_retries_skipped_total{destination,reason}: failures not retried (retry-policy's refusal reason). */
  readonly retriesSkipped: Counter<'destination' | 'reason'>;
  /** weft_proxy_ejections_total{destination,instance}: outlier ejections. */
  readonly ejections: Counter<'destination' | 'instance'>;
  /** weft_proxy_tls_handshake_failures_total{direction,reason}: see `tlsFailureReason`. */
  readonly tlsFailures: Counter<'direction' | 'reason'>;
  /** weft_proxy_certificate_expiry_timestamp_seconds{service}: notAfter of the leaf each service presents. */
  readonly certExpiry: Gauge<'service'>;
  /** weft_proxy_pool_connections{direction,destination,state}: state is active or idle; filled at scrape time. */
  readonly pools: Gauge<'direction' | 'destination' | 'state'>;
  /** weft_proxy_connections_open{direction}: client connections currently open on the listeners. */
  readonly connections: Gauge<'direction'>;
  /** weft_proxy_http_protocol_errors_total{direction,code}: requests refused by the parser (400 smuggling/malformed, 408, 431). */
  readonly protocolErrors: Counter<'direction' | 'code'>;
  /** weft_proxy_intention_denials_total{source,destination}: requests refused by intentions. */
  readonly denials: Counter<'source' | 'destination'>;
  /** weft_proxy_connections_refused_total{listener,reason}: connections closed at accept (reason max_connections); listener is inbound, outbound:<service> or metrics. */
  readonly connectionsRefused: Counter<'listener' | 'reason'>;
  /** weft_proxy_client_timeouts_total{direction,phase}: connections closed for a slow client (phase head, body or request; TLS handshakes are in tls_handshake_failures_total). */
  readonly clientTimeouts: Counter<'direction' | 'phase'>;
  /** weft_proxy_signed_state_refused_total{kind,reason}: intentions and splits in KV refused for their signature (base/signing.ts reasons). */
  readonly signedStateRefused: Counter<'kind' | 'reason'>;

  private readonly routes = new Map<string, RouteMetrics>();
  /** Latency per direction/source/destination/version: routes to instances of one version share one. */
  private readonly latencies = new Map<string, LatencyCounts>();
  /** In-flight per direction, then destination. */
  private readonly inFlights = { inbound: new Map<string, InFlight>(), outbound: new Map<string, InFlight>() };
  private readonly poolSources: Array<{ direction: Direction; read: () => Iterable<PoolSample> }> = [];

  constructor(registry: Registry) {
    const registers = [registry];
    const routes = this.routes;
    this.requests = new Counter({
      name: 'weft_proxy_requests_total',
      help: 'Requests answered by the proxy, by direction, caller, destination service, version, instance and status code.',
      labelNames: [...ROUTE, 'code'],
      registers,
      // Totals since start, handed over per scrape: a few series per route, not a call per request.
      collect() {
        this.reset();
        for (const route of routes.values()) route.collectInto(this);
      },
    });
    this.duration = new ScrapedHistogram({
      name: 'weft_proxy_request_duration_seconds',
      help: 'Time from request start to the end of the response, in seconds.',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    const inFlights = this.inFlights;
    this.inFlight = new Gauge({
      name: 'weft_proxy_requests_in_flight',
      help: 'Requests received and not yet answered.',
      labelNames: ['direction', 'destination'],
      registers,
      collect() {
        for (const [direction, cells] of Object.entries(inFlights)) {
          for (const [destination, cell] of cells) this.set({ direction, destination }, cell.value);
        }
      },
    });
    this.retries = new Counter({
      name: 'weft_proxy_retries_total',
      help: 'Retry attempts, by destination service and what failed.',
      labelNames: ['destination', 'reason'],
      registers,
    });
    this.retriesSkipped = new Counter({
      name: 'weft_proxy_retries_skipped_total',
      help: 'Failed attempts that were not retried, by destination service and the retry policy reason.',
      labelNames: ['destination', 'reason'],
      registers,
    });
    this.ejections = new Counter({
      name: 'weft_proxy_ejections_total',
      help: 'Instances ejected by outlier detection.',
      labelNames: ['destination', 'instance'],
      registers,
    });
    this.tlsFailures = new Counter({
      name: 'weft_proxy_tls_handshake_failures_total',
      help: 'mTLS handshakes that failed or whose peer identity was refused.',
      labelNames: ['direction', 'reason'],
      registers,
    });
    this.certExpiry = new Gauge({
      name: 'weft_proxy_certificate_expiry_timestamp_seconds',
      help: 'Expiry (notAfter, Unix seconds) of the certificate each local service presents.',
      labelNames: ['service'],
      registers,
    });
    const sources = this.poolSources;
    this.pools = new Gauge({
      name: 'weft_proxy_pool_connections',
      help: 'Connections held by the proxy connection pools, by state (active or idle).',
      labelNames: ['direction', 'destination', 'state'],
      registers,
      // Read at scrape time: pools change on every request, the scrape every few seconds.
      collect() {
        this.reset();
        for (const source of sources) {
          for (const s of source.read()) {
            this.set({ direction: source.direction, destination: s.destination, state: 'active' }, s.active);
            this.set({ direction: source.direction, destination: s.destination, state: 'idle' }, s.idle);
          }
        }
      },
    });
    this.connections = new Gauge({
      name: 'weft_proxy_connections_open',
      help: 'Client connections currently open on the proxy listeners.',
      labelNames: ['direction'],
      registers,
    });
    this.protocolErrors = new Counter({
      name: 'weft_proxy_http_protocol_errors_total',
      help: 'Requests refused before routing: malformed or smuggling attempts (400), header timeout (408), headers too large (431).',
      labelNames: ['direction', 'code'],
      registers,
    });
    this.denials = new Counter({
      name: 'weft_proxy_intention_denials_total',
      help: 'Requests refused by intentions, by caller and destination service.',
      labelNames: ['source', 'destination'],
      registers,
    });
    this.connectionsRefused = new Counter({
      name: 'weft_proxy_connections_refused_total',
      help: 'Connections closed at accept, by listener and reason (max_connections: the listener was full).',
      labelNames: ['listener', 'reason'],
      registers,
    });
    this.clientTimeouts = new Counter({
      name: 'weft_proxy_client_timeouts_total',
      help: 'Connections closed with 408 for a slow client: request head (head), a stalled request body (body), the whole request (request).',
      labelNames: ['direction', 'phase'],
      registers,
    });
    this.signedStateRefused = new Counter({
      name: 'weft_proxy_signed_state_refused_total',
      help: 'Intentions and splits refused because the scheduler did not sign them for their key (kind intention or split; reason unsigned, malformed, unknown-key, retired-key, bad-signature, rollback).',
      labelNames: ['kind', 'reason'],
      registers,
    });
  }

  /**
   * The cached handles of one route. Callers should keep the result (per
   * connection, per endpoint) rather than call this per request: the lookup
   * builds a key string.
   */
  route(labels: RouteLabels): RouteMetrics {
    const key = `${labels.direction}\0${labels.source}\0${labels.destination}\0${labels.version}\0${labels.instance}`;
    let route = this.routes.get(key);
    if (route === undefined) {
      const latencyKey = `${labels.direction}\0${labels.source}\0${labels.destination}\0${labels.version}`;
      let latency = this.latencies.get(latencyKey);
      if (latency === undefined) {
        latency = this.duration.series({ direction: labels.direction, source: labels.source, destination: labels.destination, version: labels.version });
        this.latencies.set(latencyKey, latency);
      }
      // Copied: the handle outlives the caller's object, and the exposition's label order is fixed here.
      const own: RouteLabels = { direction: labels.direction, source: labels.source, destination: labels.destination, version: labels.version, instance: labels.instance };
      route = new RouteMetrics(own, this.inFlightOf(labels.direction, labels.destination), latency);
      this.routes.set(key, route);
    }
    return route;
  }

  /** The in-flight handle of one destination (one Map lookup; callers may keep it). */
  inFlightOf(direction: Direction, destination: string): InFlight {
    const cells = this.inFlights[direction];
    let cell = cells.get(destination);
    if (cell === undefined) {
      cell = new InFlight();
      cells.set(destination, cell);
    }
    return cell;
  }

  /** Adds a pool whose sizes are read at every scrape (e.g. a keep-alive Agent's sockets); returns its removal. */
  addPoolSource(direction: Direction, read: () => Iterable<PoolSample>): () => void {
    const source = { direction, read };
    this.poolSources.push(source);
    return () => {
      const i = this.poolSources.indexOf(source);
      if (i >= 0) this.poolSources.splice(i, 1);
    };
  }

  /** Records the expiry of the leaf `service` presents (from X509Certificate.validTo or a Date). */
  setCertificateExpiry(service: string, notAfter: Date): void {
    this.certExpiry.set({ service }, Math.floor(notAfter.getTime() / 1000));
  }
}

/** Requests received and not yet answered, for one direction and destination; read at scrape time. */
export class InFlight {
  value = 0;
}

/**
 * Per-route handles: in-flight, latency and answered requests by status
 * code, all plain numbers. Obtain with `ProxyMetrics.route`.
 */
export class RouteMetrics {
  readonly labels: RouteLabels;
  private readonly inFlight: InFlight;
  private readonly latency: LatencyCounts;
  /** Status codes seen and their counts, side by side: a route sees a handful of codes, so a scan beats a Map. */
  private readonly codes: number[] = [];
  private readonly counts: number[] = [];

  constructor(labels: RouteLabels, inFlight: InFlight, latency: LatencyCounts) {
    this.labels = labels;
    this.inFlight = inFlight;
    this.latency = latency;
  }

  /** Call when a request arrives; returns the start time to pass to `end`. */
  start(): number {
    this.inFlight.value++;
    return performance.now();
  }

  /** Call once when the response has ended (or the request failed with `status`). */
  end(startedAt: number, status: number): void {
    this.inFlight.value--;
    this.count(startedAt, status);
  }

  /**
   * Counts an answered request and its latency without touching in-flight:
   * for a caller that keeps the in-flight handle itself (outbound learns the
   * route only once an instance is chosen).
   */
  count(startedAt: number, status: number): void {
    this.latency.observe((performance.now() - startedAt) / 1000);
    const codes = this.codes;
    for (let i = 0; i < codes.length; i++) {
      if (codes[i] === status) {
        this.counts[i]!++;
        return;
      }
    }
    codes.push(status);
    this.counts.push(1);
  }

  /** Hands the totals to the requests counter (its `collect()`, at scrape time). */
  collectInto(counter: Counter<'direction' | 'source' | 'destination' | 'version' | 'instance' | 'code'>): void {
    const l = this.labels;
    for (let i = 0; i < this.codes.length; i++) {
      counter.inc({ direction: l.direction, source: l.source, destination: l.destination, version: l.version, instance: l.instance, code: String(this.codes[i]) }, this.counts[i]!);
    }
  }
}

/** Low-cardinality reasons for `tlsFailures`. */
export type TlsFailureReason = 'plaintext' | 'no_client_certificate' | 'untrusted' | 'expired' | 'unknown_server_name' | 'identity' | 'timeout' | 'protocol';

/**
 * Maps a TLS error (tlsClientError, a client's 'error', a rejected identity)
 * to a reason label; the message text stays in logs, which can take it.
 * Pass the socket's `authorizationError` when there is one: a server with
 * `rejectUnauthorized` hangs up on a bad client chain with only "socket hang
 * up" as the error, and the verification code is left on the socket.
 */
export function tlsFailureReason(err: Error & { code?: string }, authorizationError?: string | Error | null): TlsFailureReason {
  const verify = authorizationError === undefined || authorizationError === null ? '' : String(authorizationError);
  if (verify !== '') return verify.includes('EXPIRED') || verify.includes('NOT_YET_VALID') ? 'expired' : 'untrusted';
  const code = err.code ?? '';
  const msg = err.message.toLowerCase();
  if (code === 'ERR_SSL_HTTP_REQUEST' || msg.includes('http request') || msg.includes('wrong version number')) return 'plaintext';
  if (code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE' || msg.includes('did not return a certificate')) return 'no_client_certificate';
  if (code.includes('EXPIRED') || msg.includes('expired')) return 'expired';
  if (code.includes('UNKNOWN_CA') || code.includes('VERIFY') || msg.includes('unknown ca') || msg.includes('certificate verify failed') || msg.includes('self-signed') || msg.includes('unable to get'))
    return 'untrusted';
  if (msg.includes('servername') || msg.includes('server name') || code === 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE' || msg.includes('no suitable signature') || msg.includes('sni'))
    return 'unknown_server_name';
  if (msg.includes('spiffe') || msg.includes('identity') || msg.includes('not authorized')) return 'identity';
  if (code === 'ETIMEDOUT' || msg.includes('timeout') || msg.includes('timed out')) return 'timeout';
  return 'protocol';
}

/** The phase label of `clientTimeouts` for an h1 timeout code (h1/server.ts), or undefined for other client errors. */
export function timeoutPhase(code: string): 'head' | 'body' | 'request' | undefined {
  if (code === 'HPE_HEADERS_TIMEOUT') return 'head';
  if (code === 'ERR_HTTP_BODY_TIMEOUT') return 'body';
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return 'request';
  return undefined;
}
