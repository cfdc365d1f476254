/**
 * Benchmark child process: the `ws`-based connection client for the handshake and idle-memory scenarios.
 * `open` opens connections with a bounded number of handshakes at a time (the measured window is the time
 * they all took) and holds them, idle; `close` runs every held connection's close handshake.
 */
import type WebSocket from 'ws';
import { closeSocket, connect, ErrorList, openWindow, serveOrchestrator } from './client-sockets.js';
import type { CloseResult, OpenRequest, OpenResult } from './messages.js';

/** The open connections, and what goes wrong with them while held (reported by `close`). */
let held = new Set<WebSocket>();
let heldErrors = new ErrorList();

async function open(request: OpenRequest): Promise<OpenResult> {
  const errors = new ErrorList();
  const errorsWhileHeld = heldErrors;
  let next = 0;
  let opened = 0;
  const closeWindow = openWindow();
  // `concurrency` workers, each opening the next connection as soon as its previous one is open.
  await Promise.all(
    Array.from({ length: Math.min(request.concurrency, request.connections) }, async () => {
      while (next < request.connections) {
        const id = next++;
        try {
          const socket = await connect(request.url);
          socket.on('error', (error) => errorsWhileHeld.add(`connection ${id}: ${error.message}`));
          socket.on('close', (code) => {
            if (held.has(socket)) errorsWhileHeld.add(`connection ${id}: closed by the server (${code}) while held`);
          });
          held.add(socket);
          opened++;
        } catch (error) {
          errors.add(`connection ${id}: connect failed: ${String(error)}`);
        }
      }
    }),
  );
  return { type: 'opened', opened, ...closeWindow(), errors: errors.toArray() };
}

async function close(): Promise<CloseResult> {
  const errors = heldErrors;
  const sockets = [...held];
  held = new Set();
  heldErrors = new ErrorList();
  await Promise.all(sockets.map((socket, index) => closeSocket(socket, `connection ${index}`, errors)));
  return { type: 'closed', errors: errors.toArray() };
}

serveOrchestrator((request: OpenRequest | { type: 'close' }) => (request.type === 'open' ? open(request) : close()));
