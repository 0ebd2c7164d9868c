/**
 * certs benchmark, everything measured in this one run on one core (a single
 * JS thread; process CPU time is printed to show it):
 *
 *   1. CSR signatures/s: parse + key check + signature check + identity check
 *      + build + sign a leaf, through the same function the scheduler uses.
 *   2. Full mTLS handshakes/s (TLS 1.3, no resumption, client cert verified and
 *      SPIFFE-checked by the server) with P-256 leaves vs RSA-2048 leaves,
 *      client and server in this process, interleaved rounds.
 *   3. The handshake's public-key work alone (per mutual handshake: 2 signatures,
 *      4 verifications, 2 X25519 key pairs + 2 derivations), to show how much
 *      of a handshake the key type can influence at all.
 *
 * Targets (issue): >= 500 signatures/s; P-256 handshakes >= 3x RSA-2048's.
 * Run: npx tsx bench/certs/bench.ts   (or npm run bench:certs)
 */
import { constants, diffieHellman, generateKeyPairSync, sign, verify } from 'node:crypto';
import { cpus } from 'node:os';
import tls from 'node:tls';
import { CertificateAuthority } from '../../certs/ca.js';
import { createCsr } from '../../certs/csr.js';
import { createCsrSigner } from '../../certs/csr-signer.js';
import { type KeyType, generateKeyPair, privateKeyPem } from '../../certs/keys.js';
import { issueLeafCertificate } from '../../certs/leaf.js';
import { type MeshIdentity, meshClientOptions, meshServerOptions, requirePeerIdentity } from '../../certs/mtls.js';
import { rootCertificate } from '../../certs/profiles.js';
import { spiffeId } from '../../certs/spiffe-id.js';

const TD = 'bench.local';
const SIGN_SECONDS = Number(process.env['BENCH_SIGN_SECONDS'] ?? 3);
const HANDSHAKE_SECONDS = Number(process.env['BENCH_HANDSHAKE_SECONDS'] ?? 3);
const ROUNDS = 2;
const CONCURRENCY = 8;

interface Rate {
  perSecond: number;
  count: number;
  cpuCores: number;
}

/** Runs `step` until `seconds` pass (sync loop); returns the rate and CPU cores used. */
function measureSync(seconds: number, step: (i: number) => void): Rate {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let count = 0;
  while (performance.now() - t0 < seconds * 1000) step(count++);
  return finish(t0, cpu0, count);
}

function finish(t0: number, cpu0: NodeJS.CpuUsage, count: number): Rate {
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { perSecond: (count * 1000) / wallMs, count, cpuCores: (cpu.user + cpu.system) / 1000 / wallMs };
}

function benchSignatures(): Rate {
  const ca = CertificateAuthority.create({ trustDomain: TD });
  const signer = createCsrSigner({ ca, perSecond: 0 });
  // Keys are made where they are used (the hosts): build the CSRs outside the timed loop.
  const csrs = Array.from({ length: 64 }, (_, i) => createCsr(generateKeyPair().privateKey, spiffeId(TD, 'default', `svc-${i}`)));
  const anyone = () => true;
  measureSync(0.5, (i) => signer.sign(csrs[i % csrs.length]!, anyone)); // warm-up
  return measureSync(SIGN_SECONDS, (i) => signer.sign(csrs[i % csrs.length]!, anyone));
}

/** A root and two leaves of one key type (root of the same type, so the whole chain is that algorithm). */
function chainOf(type: KeyType): { server: MeshIdentity; client: MeshIdentity } {
  const now = Date.now();
  const root = generateKeyPair(type);
  const rootCert = rootCertificate({ trustDomain: TD, publicKey: root.publicKey, privateKey: root.privateKey, now, ttlMs: 24 * 3600_000 });
  const signer = { certPem: rootCert.pem, certDer: rootCert.der, key: root.privateKey };
  const leaf = (service: string): MeshIdentity => {
    const pair = generateKeyPair(type);
    const cert = issueLeafCertificate(signer, { publicKey: pair.publicKey, id: spiffeId(TD, 'default', service), ttlMs: 3600_000, now });
    return { keyPem: privateKeyPem(pair.privateKey), certChainPem: cert.pem, bundlePem: rootCert.pem };
  };
  return { server: leaf('server'), client: leaf('client') };
}

/** Full mutual handshakes per second: a connection counts once the server has verified and greeted the client. */
async function benchHandshakes(ids: { server: MeshIdentity; client: MeshIdentity }, seconds: number): Promise<Rate> {
  const server = tls.createServer(meshServerOptions(ids.server), (socket) => {
    socket.end('k');
  });
  requirePeerIdentity(server, { trustDomain: TD });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const clientOpts = { ...meshClientOptions(ids.client, { trustDomain: TD }), host: '127.0.0.1', port };
  let done = 0;
  let failed = 0;
  const deadline = performance.now() + seconds * 1000;
  const one = () =>
    new Promise<void>((resolve) => {
      const s = tls.connect(clientOpts);
      let greeted = false;
      s.once('data', () => {
        greeted = !s.isSessionReused(); // a resumed session would not be a full handshake
        s.destroy();
      });
      s.on('error', () => {});
      s.on('close', () => {
        if (greeted) done++;
        else failed++;
        resolve();
      });
    });
  const worker = async () => {
    while (performance.now() < deadline) await one();
  };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const rate = finish(t0, cpu0, done);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (failed > 0) throw new Error(`${failed} handshakes failed`);
  return rate;
}

/**
 * What a mutual TLS 1.3 handshake asks of the key type, both sides together:
 * each side signs its CertificateVerify (ECDSA, or RSA-PSS for RSA) and
 * verifies the peer's CertificateVerify and the peer leaf's certificate
 * signature; each side makes an X25519 key pair and derives the shared secret.
 */
function benchHandshakeCrypto(type: KeyType, seconds: number): Rate {
  const leaf = generateKeyPair(type);
  const root = generateKeyPair(type);
  const data = Buffer.alloc(130, 7);
  const pss = type === 'rsa-2048' ? { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } : {};
  const cv = sign('sha256', data, { key: leaf.privateKey, ...pss });
  const certSig = sign('sha256', data, root.privateKey);
  const peer = generateKeyPairSync('x25519');
  return measureSync(seconds, () => {
    for (let side = 0; side < 2; side++) {
      sign('sha256', data, { key: leaf.privateKey, ...pss });
      verify('sha256', data, { key: leaf.publicKey, ...pss }, cv);
      verify('sha256', data, root.publicKey, certSig);
      const eph = generateKeyPairSync('x25519');
      diffieHellman({ privateKey: eph.privateKey, publicKey: peer.publicKey });
    }
  });
}

function fmt(n: number): string {
  return n.toFixed(0).padStart(7);
}

async function main(): Promise<void> {
  process.stdout.write(`weft certs benchmark — node ${process.version}, ${cpus()[0]?.model ?? 'cpu'} (${cpus().length} cores visible), single JS thread\n\n`);

  const sig = benchSignatures();
  process.stdout.write(`CSR signatures (parse, verify CSR, check identity, build + sign P-256 leaf)\n`);
  process.stdout.write(`  ${fmt(sig.perSecond)} signatures/s   (${sig.count} in ${SIGN_SECONDS} s, ${sig.cpuCores.toFixed(2)} cores busy)\n\n`);

  const ec = chainOf('ec-p256');
  const rsa = chainOf('rsa-2048');
  await benchHandshakes(ec, 0.5); // warm-up both paths
  await benchHandshakes(rsa, 0.5);
  const results: Record<'ec' | 'rsa', Rate[]> = { ec: [], rsa: [] };
  for (let r = 0; r < ROUNDS; r++) {
    results.ec.push(await benchHandshakes(ec, HANDSHAKE_SECONDS));
    results.rsa.push(await benchHandshakes(rsa, HANDSHAKE_SECONDS));
  }
  const mean = (rs: Rate[]) => rs.reduce((a, b) => a + b.perSecond, 0) / rs.length;
  const cores = (rs: Rate[]) => rs.reduce((a, b) => a + b.cpuCores, 0) / rs.length;
  const cpuMs = (rs: Rate[]) => (1000 * cores(rs)) / mean(rs);
  const ecRate = mean(results.ec);
  const rsaRate = mean(results.rsa);
  const ratio = ecRate / rsaRate;
  process.stdout.write(`mTLS full handshakes (TLS 1.3, client + server in this process, ${CONCURRENCY} in flight, ${ROUNDS} x ${HANDSHAKE_SECONDS} s interleaved)\n`);
  process.stdout.write(`  ECDSA P-256 leaves: ${fmt(ecRate)} handshakes/s   (rounds: ${results.ec.map((r) => r.perSecond.toFixed(0)).join(', ')}; ${cores(results.ec).toFixed(2)} cores busy)\n`);
  process.stdout.write(`  RSA-2048 leaves:    ${fmt(rsaRate)} handshakes/s   (rounds: ${results.rsa.map((r) => r.perSecond.toFixed(0)).join(', ')}; ${cores(results.rsa).toFixed(2)} cores busy)\n`);
  process.stdout.write(`  ratio P-256 / RSA-2048: ${ratio.toFixed(2)}x\n`);
  process.stdout.write(`  CPU per handshake: P-256 ${cpuMs(results.ec).toFixed(2)} ms, RSA-2048 ${cpuMs(results.rsa).toFixed(2)} ms\n\n`);

  const ecCrypto = benchHandshakeCrypto('ec-p256', HANDSHAKE_SECONDS / 2);
  const rsaCrypto = benchHandshakeCrypto('rsa-2048', HANDSHAKE_SECONDS / 2);
  process.stdout.write('Public-key work of one mutual handshake alone (2 signs + 4 verifies + 2 X25519 pairs/derivations)\n');
  process.stdout.write(`  ECDSA P-256: ${fmt(ecCrypto.perSecond)} /s  (${(1000 / ecCrypto.perSecond).toFixed(3)} ms)\n`);
  process.stdout.write(`  RSA-2048:    ${fmt(rsaCrypto.perSecond)} /s  (${(1000 / rsaCrypto.perSecond).toFixed(3)} ms)\n`);
  process.stdout.write(`  ratio: ${(ecCrypto.perSecond / rsaCrypto.perSecond).toFixed(2)}x — the ceiling for the handshake ratio; the rest of a handshake's CPU is key-type independent\n\n`);

  const sigOk = sig.perSecond >= 500;
  const ratioOk = ratio >= 3;
  process.stdout.write(`target >= 500 signatures/s:           ${sigOk ? 'MET' : 'NOT MET'} (${sig.perSecond.toFixed(0)})\n`);
  process.stdout.write(`target P-256 handshakes >= 3x RSA:    ${ratioOk ? 'MET' : 'NOT MET'} (${ratio.toFixed(2)}x)\n`);
}

await main();
