/**
 * Heads parsed per second by the proxy's parser (Node's internal llhttp,
 * through proxy/h1/llhttp.ts) and by the fallback if Node takes its
 * internals away: undici's llhttp compiled to WebAssembly
 * (node_modules/undici/lib/llhttp/), driven directly, with the same output
 * (flat [name, value, ...] headers, url, method, body chunks as Buffers).
 * proxy/README.md, "The parser seam", has the figures.
 *
 *   npm run bench:parser [-- iterations [rounds]]     (default 200000 per case, 3 rounds)
 *
 * Cases: a small GET, a request of 40 headers (llhttp hands Node's parser
 * those in pieces through kOnHeaders), a chunked POST. Each head goes in as
 * its own Buffer, one execute per head, on one parser per case (a
 * keep-alive connection). Both sides parse from a JavaScript Buffer: in
 * production Node's parser reads the socket handle itself (`consume`),
 * which a wasm parser cannot, so these figures compare parsers, not data
 * paths. Rounds alternate Node and wasm; the median round is printed. Every
 * loop is bounded by its iteration count and by a time cap.
 */
import { createRequire } from 'node:module';
import { HTTPParser, METHODS, newParser, onHeadComplete } from '../../proxy/h1/llhttp.js';

const iterations = Number(process.argv[2] ?? 200_000);
const rounds = Number(process.argv[3] ?? 3);
/** No measurement runs longer than this, whatever the iteration count. */
const CAP_MS = 5_000;

/** What a parser produced for one message, for the equality check. */
interface Parsed {
  method: string;
  url: string;
  headers: string[];
  body: string;
}

/** Parses one message per `parse(buf)` call and hands what it got to `sink`. */
interface Driver {
  parse(buf: Buffer): void;
}

function headersOf(n: number): string {
  let out = '';
  for (let i = 0; i < n; i++) out += `X-Header-${i}: value-${i}-${'v'.repeat(i % 13)}\r\n`;
  return out;
}

const CASES: Array<[name: string, head: Buffer]> = [
  ['small GET', Buffer.from('GET /api/users/42?fields=name HTTP/1.1\r\nHost: backend\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n')],
  ['40 headers', Buffer.from(`GET /api/orders HTTP/1.1\r\nHost: backend\r\n${headersOf(38)}Accept: application/json\r\n\r\n`)],
  [
    'chunked POST',
    Buffer.from(
      'POST /api/orders HTTP/1.1\r\nHost: backend\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n' +
        '1a\r\n{"item":"widget","qty":12}\r\n0\r\n\r\n',
    ),
  ],
];

/** Node's parser, installed as the data path installs it. */
function nodeDriver(sink: (p: Parsed) => void): Driver {
  const parser = newParser(HTTPParser.REQUEST, 0);
  let current: Parsed = { method: '', url: '', headers: [], body: '' };
  onHeadComplete(parser, (_minor, headers, method, url) => {
    current = { method: METHODS[method] ?? '', url, headers, body: '' };
    return 0;
  });
  parser[HTTPParser.kOnBody] = (chunk: Buffer) => {
    current.body += chunk.toString('latin1');
  };
  parser[HTTPParser.kOnMessageComplete] = () => sink(current);
  return {
    parse(buf) {
      const ret = parser.execute(buf);
      if (typeof ret !== 'number') throw ret;
    },
  };
}

interface LlhttpExports {
  memory: WebAssembly.Memory;
  malloc(size: number): number;
  llhttp_alloc(type: number): number;
  llhttp_execute(parser: number, data: number, len: number): number;
  llhttp_get_method(parser: number): number;
  llhttp_get_error_reason(parser: number): number;
}

const req = createRequire(import.meta.url);
const constants = req('undici/lib/llhttp/constants.js') as { TYPE: { REQUEST: number }; METHODS: Record<string, number>; ERROR: { OK: number } };
/** llhttp's method names by index (the wasm build reports indices, as Node's binding does). */
const WASM_METHODS: string[] = [];
for (const [name, index] of Object.entries(constants.METHODS)) WASM_METHODS[index] ??= name;

/**
 * undici's wasm llhttp, driven directly: the chunk is copied into wasm
 * memory, llhttp calls back with offsets into it, and the strings and body
 * views are cut from the caller's Buffer at those offsets. A field or value
 * may come in several callbacks (a head split across reads), so pieces append.
 */
function wasmDriver(file: string, sink: (p: Parsed) => void): Driver {
  let chunk: Buffer = Buffer.alloc(0);
  let chunkPtr = 0;
  let headers: string[] = [];
  let url = '';
  /** What the last header callback was: 0 none, 1 field, 2 value. */
  let last = 0;
  let current: Parsed = { method: '', url: '', headers: [], body: '' };
  let ll!: LlhttpExports;
  let parser = 0;
  const text = (at: number, len: number): string => chunk.toString('latin1', at - chunkPtr, at - chunkPtr + len);
  const env = {
    wasm_on_message_begin: () => {
      headers = [];
      url = '';
      last = 0;
      return 0;
    },
    wasm_on_url: (_p: number, at: number, len: number) => {
      url += text(at, len);
      return 0;
    },
    wasm_on_status: () => 0,
    wasm_on_header_field: (_p: number, at: number, len: number) => {
      if (last === 1) headers[headers.length - 1] += text(at, len);
      else headers.push(text(at, len), '');
      last = 1;
      return 0;
    },
    wasm_on_header_value: (_p: number, at: number, len: number) => {
      headers[headers.length - 1] += text(at, len);
      last = 2;
      return 0;
    },
    wasm_on_headers_complete: () => {
      current = { method: WASM_METHODS[ll.llhttp_get_method(parser)] ?? '', url, headers, body: '' };
      return 0;
    },
    wasm_on_body: (_p: number, at: number, len: number) => {
      // A view of the caller's Buffer, as Node's parser hands body bytes over.
      const view = chunk.subarray(at - chunkPtr, at - chunkPtr + len);
      current.body += view.toString('latin1');
      return 0;
    },
    wasm_on_message_complete: () => {
      sink(current);
      return 0;
    },
  };
  const mod = new WebAssembly.Module(req(file) as Uint8Array<ArrayBuffer>);
  ll = new WebAssembly.Instance(mod, { env }).exports as unknown as LlhttpExports;
  parser = ll.llhttp_alloc(constants.TYPE.REQUEST);
  let size = 0;
  return {
    parse(buf) {
      if (buf.length > size) {
        size = Math.ceil(buf.length / 4096) * 4096;
        chunkPtr = ll.malloc(size);
      }
      new Uint8Array(ll.memory.buffer, chunkPtr, buf.length).set(buf);
      chunk = buf;
      const ret = ll.llhttp_execute(parser, chunkPtr, buf.length);
      if (ret !== constants.ERROR.OK) throw new Error(`wasm llhttp error ${ret}`);
    },
  };
}

const DRIVERS: Array<[name: string, make: (sink: (p: Parsed) => void) => Driver]> = [
  ['node', nodeDriver],
  ['wasm', (sink) => wasmDriver('undici/lib/llhttp/llhttp-wasm.js', sink)],
  ['wasm-simd', (sink) => wasmDriver('undici/lib/llhttp/llhttp_simd-wasm.js', sink)],
];

/** Heads per second: `n` parses (after a warm-up of n/10), or fewer if the time cap comes first. */
function rate(driver: Driver, head: Buffer, n: number): number {
  for (let i = 0; i < Math.max(1000, n / 10); i++) driver.parse(head);
  const start = performance.now();
  let done = 0;
  while (done < n) {
    for (let i = 0; i < 1000; i++) driver.parse(head);
    done += 1000;
    if (performance.now() - start > CAP_MS) break;
  }
  return (done / (performance.now() - start)) * 1000;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (x: number): string => `${(x / 1e6).toFixed(2)} M/s`;

console.log(`node ${process.version} (llhttp ${process.versions.llhttp}), undici's wasm llhttp; ${iterations} heads per case, ${rounds} rounds, median`);
for (const [name, head] of CASES) {
  // Same output from every driver before anything is timed: the fallback must be a drop-in.
  const outputs = DRIVERS.map(([, make]) => {
    const got: Parsed[] = [];
    make((p) => got.push(p)).parse(head);
    return JSON.stringify(got);
  });
  if (new Set(outputs).size !== 1) throw new Error(`${name}: the parsers disagree:\n${outputs.join('\n')}`);
  const rates: number[][] = DRIVERS.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (const [i, [, make]] of DRIVERS.entries()) rates[i]!.push(rate(make(() => {}), head, iterations));
  }
  const [node, ...rest] = rates.map(median);
  const others = rest.map((x, i) => `${DRIVERS[i + 1]![0]} ${fmt(x)} (${(x / node!).toFixed(2)}x)`).join(', ');
  console.log(`${name.padEnd(13)} ${String(head.length).padStart(4)} B   node ${fmt(node!)}, ${others}`);
}
