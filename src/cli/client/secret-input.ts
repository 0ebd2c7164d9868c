/**
 * Where `weft secret set NAME` gets the value: standard input or `--from-file`,
 * never an argument (argv lands in shell history and in `ps` for every user of
 * the machine). At a terminal the value is typed without echo; from a pipe it
 * is read whole. The value is never printed back, not even in errors.
 */
import { readFileSync } from 'node:fs';
import { WeftError, invalid } from '../../../base/errors.js';

/** The API's limit on a secret value (base/contracts/scheduler-api.ts PutSecretRequestSchema). */
export const MAX_SECRET_LENGTH = 65_536;

/** Where to read from; the defaults are the process's own stdin and stderr. */
export interface SecretSource {
  fromFile?: string | undefined;
  stdin?: NodeJS.ReadStream;
  prompt?: (text: string) => void;
}

/**
 * Reads the value. From stdin one trailing newline is dropped (`echo s3cret |`
 * and a typed Enter both mean `s3cret`); a file is taken byte for byte (PEM
 * keys keep their final newline).
 */
export async function readSecretValue(name: string, src: SecretSource = {}): Promise<string> {
  const stdin = src.stdin ?? process.stdin;
  let value: string;
  if (src.fromFile !== undefined) {
    try {
      value = readFileSync(src.fromFile, 'utf8');
    } catch (cause) {
      throw new WeftError('WEFT_ERR_ARGUMENT_INVALID', `--from-file ${src.fromFile}: ${(cause as Error).message}`, { key: '--from-file', value: src.fromFile, cause });
    }
  } else if (stdin.isTTY === true) {
    (src.prompt ?? ((t: string) => process.stderr.write(t)))(`value for secret ${name} (not echoed): `);
    value = await readHidden(stdin);
    (src.prompt ?? ((t: string) => process.stderr.write(t)))('\n');
  } else {
    value = (await readAll(stdin)).replace(/\r?\n$/, '');
  }
  if (value === '') {
    throw invalid('WEFT_ERR_SECRET_INVALID', 'value', '', `the value of secret ${name} is empty: pipe it in (weft secret set ${name} < file) or use --from-file`);
  }
  if (value.length > MAX_SECRET_LENGTH) {
    // The value itself stays out of the error: only its size.
    throw new WeftError('WEFT_ERR_SECRET_INVALID', `the value of secret ${name} is ${value.length} characters; the limit is ${MAX_SECRET_LENGTH}`, {
      key: 'value',
      value: value.length,
    });
  }
  return value;
}

/** Reads a stream to its end, at most a little past the limit (a runaway pipe is cut, then refused). */
async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    chunks.push(b);
    size += b.length;
    if (size > MAX_SECRET_LENGTH * 4 + 4) break;
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** One line from a terminal in raw mode, without echo; Ctrl-C aborts, Backspace edits. */
function readHidden(stdin: NodeJS.ReadStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let value = '';
    stdin.setRawMode(true);
    stdin.resume();
    const done = (err?: Error): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (data: Buffer): void => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          done();
          return;
        }
        if (ch === '\u0003') {
          done(new WeftError('WEFT_ERR_ARGUMENT_INVALID', 'interrupted: no secret was stored', { key: 'value' }));
          return;
        }
        if (ch === '\u007f' || ch === '\b') value = [...value].slice(0, -1).join('');
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}
