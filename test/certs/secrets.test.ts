/** Private keys never reach logs or published data, however a caller passes CA objects around. */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import t from 'tap';
import { serializeBundle } from '../../certs/bundle.js';
import { REDACT } from '../../base/log.js';
import { makeCa, makeIdentity } from './fixtures.js';

function capture(): { logger: pino.Logger; text: () => string } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return { logger: pino({ redact: { paths: REDACT, censor: '[redacted]' } }, sink), text: () => chunks.join('') };
}

t.test("weft's logger redacts identities' private keys", async (t) => {
  const ca = makeCa({ intermediate: true });
  const identity = makeIdentity(ca, 'web');
  const { logger, text } = capture();
  logger.info({ identity }, 'installed identity');
  logger.info(identity, 'installed identity (spread)');
  t.notMatch(text(), /PRIVATE KEY/);
  t.match(text(), /BEGIN CERTIFICATE/, 'public parts still logged');
  t.match(text(), /\[redacted\]/);
});

t.test('the CA object serialises without key material', async (t) => {
  const ca = makeCa({ intermediate: true });
  ca.rotate();
  const { logger, text } = capture();
  logger.info({ ca, state: ca.state, keys: ca.keys }, 'ca');
  t.notMatch(text(), /PRIVATE KEY/);
  t.notMatch(JSON.stringify(ca), /PRIVATE KEY/);
  t.notMatch(JSON.stringify(ca.state), /PRIVATE KEY/);
  t.notMatch(serializeBundle(ca.bundle()), /PRIVATE KEY/);
});
