/**
 * Waiting for a socket's buffer to drain. Every chunk of a read relayed
 * after the buffer filled asks to be told, so waiters of one socket share a
 * single 'drain' listener (one listener each piled up past Node's
 * MaxListeners warning).
 */
import type { Socket } from 'node:net';

const waiting = new WeakMap<Socket, Array<() => void>>();

/** Calls `fn` once when `socket` next drains. */
export function onceDrained(socket: Socket, fn: () => void): void {
  const list = waiting.get(socket);
  if (list !== undefined) {
    list.push(fn);
    return;
  }
  const waiters = [fn];
  waiting.set(socket, waiters);
  socket.once('drain', () => {
    waiting.delete(socket);
    for (const w of waiters) w();
  });
}
