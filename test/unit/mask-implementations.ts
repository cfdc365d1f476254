/**
 * The masking implementations the unit and property tests run against, all in the same run: our
 * JavaScript, bufferutil at every length, and applyMask as the codec uses it (native from its
 * threshold on when bufferutil is loaded).
 */
import { applyMask, jsMask, nativeMask, type MaskFunction } from '../../lib/protocol/masking.js';

/** Fails each test that uses it, rather than skipping it, when bufferutil did not load. */
const bufferUtilOrFail: MaskFunction =
  nativeMask ??
  (() => {
    throw new Error('bufferutil did not load: run `npm install` (it is an optional dependency) and leave NEST_WEBSOCKET_ROUTES_NO_BUFFERUTIL unset');
  });

export const MASK_IMPLEMENTATIONS: Array<[name: string, mask: MaskFunction]> = [
  ['javascript', jsMask],
  ['bufferutil', bufferUtilOrFail],
  ['applyMask', applyMask],
];
