/**
 * Logging via pino: pretty when stdout is a terminal, JSON lines otherwise
 * (log shippers want JSON; people want colour). Secrets are redacted by path.
 */
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

export type LogFormat = 'auto' | 'json' | 'pretty';

/**
 * Paths pino must never print (keyPem: a certs/ MeshIdentity's private key).
 * Not `key`: coded errors use it for the offending config or label key.
 */
export const REDACT = ['*.privateKey', 'privateKey', '*.keyPem', 'keyPem', '*.token', 'token', '*.secret', 'secret', 'headers.authorization'];

/** Creates the process logger. `name` is the component (dev-consul, proxy, ...). */
export function createLogger(opts: { level?: string; format?: LogFormat; name?: string } = {}): Logger {
  const format = opts.format ?? 'auto';
  const pretty = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
  const options: LoggerOptions = {
    level: opts.level ?? 'info',
    redact: { paths: REDACT, censor: '[redacted]' },
  };
  if (opts.name !== undefined) options.name = opts.name;
  if (pretty) {
    options.transport = { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } };
  }
  return pino(options);
}

/** A logger that prints nothing: the default for library code and tests. */
export const silentLogger: Logger = pino({ level: 'silent' });
