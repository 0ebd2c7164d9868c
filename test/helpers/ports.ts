/** Free loopback ports for daemons that cannot listen on port 0 and report back. */
import { createServer } from 'node:net';

/** Asks the kernel for a free port on `host`, then releases it for the caller. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
