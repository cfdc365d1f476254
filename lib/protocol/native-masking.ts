/**
 * Loads `bufferutil`, the native masking library `ws` uses, once at startup. It is an optional
 * dependency: it may be absent (`--omit=optional`), fail to load (no prebuilt binary for the
 * platform), or be switched off with `NEST_WEBSOCKET_ROUTES_NO_BUFFERUTIL=1`; masking then stays in
 * JavaScript.
 */
import { createRequire } from 'node:module';

/** XORs `buffer` in place with the 4-byte `mask`, starting at mask byte 0. */
export type Unmask = (buffer: Uint8Array, mask: Uint8Array) => void;

interface BufferUtil {
  unmask: Unmask;
}

/** The switch that forces the JavaScript fallback, read once. Our own name: `WS_NO_BUFFER_UTIL` is `ws`'s. */
export const NO_BUFFERUTIL_VARIABLE = 'NEST_WEBSOCKET_ROUTES_NO_BUFFERUTIL';

function loadUnmask(): Unmask | undefined {
  if (process.env[NO_BUFFERUTIL_VARIABLE] === '1') return undefined;
  // CommonJS, and possibly missing: a synchronous require keeps the load at startup without top-level await.
  const require = createRequire(import.meta.url);
  try {
    const bufferUtil = require('bufferutil') as BufferUtil;
    // Without its binary, bufferutil hands out its own byte-at-a-time JavaScript, slower than ours.
    const ownFallback = require('bufferutil/fallback.js') as BufferUtil;
    return bufferUtil.unmask === ownFallback.unmask ? undefined : bufferUtil.unmask;
  } catch {
    return undefined;
  }
}

/** bufferutil's native `unmask`, or undefined when it is switched off, missing or not native. */
export const bufferUtilUnmask: Unmask | undefined = loadUnmask();
