// A floor for bench/proxy/two-hops.ts: the two hops as an HTTP/1.1 relay on raw sockets with
// Node's own llhttp, no weft code (no routing, picking, retries, metrics, intentions; GET-sized
// bodies only, no limits or timeouts). It is the prototype that showed the design of proxy/h1
// could reach HAProxy's half; weft should stay near it. Plain JavaScript, nothing compiles.
//   node bench/proxy/raw-relay.mjs outbound <bind> <port> <upHost> <upPort> <identityDir> <sni>
//   node bench/proxy/raw-relay.mjs inbound  <bind> <port> <appHost> <appPort> <identityDir>
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import tls from 'node:tls';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const { HTTPParser, methods } = require('node:_http_common');
const [mode, bind, port, upHost, upPort, idDir, sni] = process.argv.slice(2);
const creds = { key: readFileSync(join(idDir, 'key.pem')), cert: readFileSync(join(idDir, 'cert.pem')), ca: readFileSync(join(idDir, 'bundle.pem')) };
const secureUp = mode === 'outbound';
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer', 'content-length']);
const kHC = HTTPParser.kOnHeadersComplete;
const kB = HTTPParser.kOnBody;
const kMC = HTTPParser.kOnMessageComplete;
const kH = HTTPParser.kOnHeaders;

function headBlock(headers) {
  let s = '';
  let framing = '';
  for (let i = 0; i < headers.length; i += 2) {
    const k = headers[i];
    const lk = k.toLowerCase();
    if (lk === 'content-length') framing = `content-length: ${headers[i + 1]}\r\n`;
    else if (lk === 'transfer-encoding') framing = 'transfer-encoding: chunked\r\n';
    else if (!HOP.has(lk)) s += `${k}: ${headers[i + 1]}\r\n`;
  }
  return { s, chunked: framing.startsWith('transfer'), framing };
}

const idle = [];
function upstream() {
  const u = idle.pop();
  if (u !== undefined) return u;
  const socket = secureUp ? tls.connect({ host: upHost, port: Number(upPort), ...creds, servername: sni }) : net.connect(Number(upPort), upHost);
  socket.setNoDelay(true);
  const parser = new HTTPParser();
  parser.initialize(HTTPParser.RESPONSE, {}, 0, 0);
  const up = { socket, parser, down: null, chunked: false, head: false, dead: false };
  parser[kH] = () => {};
  parser[kHC] = (_maj, _min, headers, _method, _url, status, statusMessage, _upgrade, keepAlive) => {
    const d = up.down;
    const h = headBlock(headers);
    up.chunked = h.chunked;
    up.keepAlive = keepAlive;
    d.socket.write(`HTTP/1.1 ${status} ${statusMessage}\r\n${h.s}${h.framing}${d.keepAlive ? '' : 'connection: close\r\n'}\r\n`);
    return up.head ? 1 : 0;
  };
  parser[kB] = (b) => {
    const d = up.down.socket;
    if (up.chunked) d.write(`${b.length.toString(16)}\r\n`);
    d.write(b);
    if (up.chunked) d.write('\r\n');
  };
  parser[kMC] = () => {
    const d = up.down;
    if (up.chunked) d.socket.write('0\r\n\r\n');
    up.down = null;
    if (up.keepAlive && !up.dead) idle.push(up);
    else socket.end();
    d.done();
  };
  socket.on('data', (buf) => {
    const d = up.down?.socket;
    d?.cork();
    const r = parser.execute(buf);
    d?.uncork();
    if (r instanceof Error) socket.destroy();
  });
  const gone = () => {
    up.dead = true;
    const i = idle.indexOf(up);
    if (i >= 0) idle.splice(i, 1);
    if (up.down !== null) up.down.socket.destroy();
  };
  socket.on('close', gone);
  socket.on('error', () => {});
  return up;
}

function onConnection(socket) {
  socket.setNoDelay(true);
  const parser = new HTTPParser();
  parser.initialize(HTTPParser.REQUEST, {}, 0, 0);
  const conn = { socket, up: null, chunked: false, keepAlive: true, done: null };
  conn.done = () => {
    conn.up = null;
    if (!conn.keepAlive) socket.end();
    else socket.resume();
  };
  parser[kH] = () => {};
  parser[kHC] = (_maj, _min, headers, method, url, _status, _text, _upgrade, keepAlive) => {
    conn.keepAlive = keepAlive;
    const h = headBlock(headers);
    conn.chunked = h.chunked;
    const up = upstream();
    up.down = conn;
    up.head = methods[method] === 'HEAD';
    conn.up = up;
    socket.pause();
    up.socket.write(`${methods[method]} ${url} HTTP/1.1\r\n${h.s}x-forwarded-for: ${socket.remoteAddress}\r\n${h.framing}\r\n`);
    return 0;
  };
  parser[kB] = (b) => {
    const u = conn.up.socket;
    if (conn.chunked) u.write(`${b.length.toString(16)}\r\n`);
    u.write(b);
    if (conn.chunked) u.write('\r\n');
  };
  parser[kMC] = () => {
    if (conn.chunked) conn.up.socket.write('0\r\n\r\n');
  };
  socket.on('data', (buf) => {
    const r = parser.execute(buf);
    if (r instanceof Error) {
      socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    }
  });
  socket.on('error', () => {});
}

const server = secureUp ? net.createServer(onConnection) : tls.createServer({ ...creds, requestCert: true, rejectUnauthorized: true }, onConnection);
server.listen(Number(port), bind, () => process.stderr.write(`raw-relay ${mode} on ${bind}:${port}\n`));
process.on('SIGTERM', () => process.exit(0));
