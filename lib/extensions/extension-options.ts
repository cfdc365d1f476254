/**
 * The extension options users give (module-wide, per route, or to
 * WebSocketUpgrade), and the checked list of factories they resolve to.
 */
import { describeValue } from '../protocol/describe-value.js';
import { checkExtensionFactories, type WebSocketExtensionFactory } from '../protocol/websocket-extension.js';
import { permessageDeflate, type PerMessageDeflateOptions } from './permessage-deflate.factory.js';

export interface WebSocketExtensionOptions {
  /**
   * permessage-deflate (RFC 7692): `true` with the defaults, options to tune
   * it, `false` to turn off what the module set. Off by default.
   */
  deflate?: boolean | PerMessageDeflateOptions;
  /** Other extensions to offer (factories, see `WebSocketExtensionFactory`). A route's list replaces the module's. */
  extensions?: WebSocketExtensionFactory[];
}

/**
 * What a session offers: a raw one nothing unless it asks to negotiate (Ktor's
 * `webSocketRaw(negotiateExtensions = false)`). The options are checked either way.
 */
export function offeredExtensionFactories(
  session: { raw: boolean; negotiateExtensions?: boolean },
  ...layers: Array<WebSocketExtensionOptions | undefined>
): WebSocketExtensionFactory[] {
  const factories = resolveExtensionFactories(...layers);
  return session.raw && session.negotiateExtensions !== true ? [] : factories;
}

/** Later layers override earlier ones; throws at startup on an invalid option or an RSV bit claimed twice. */
export function resolveExtensionFactories(...layers: Array<WebSocketExtensionOptions | undefined>): WebSocketExtensionFactory[] {
  let deflate: boolean | PerMessageDeflateOptions = false;
  let extensions: WebSocketExtensionFactory[] = [];
  for (const layer of layers) {
    if (layer?.deflate !== undefined) deflate = layer.deflate;
    if (layer?.extensions !== undefined) extensions = layer.extensions;
  }
  if (!Array.isArray(extensions)) {
    throw new TypeError(`WebSockets option "extensions" must be an array of extension factories, got ${describeValue(extensions)}`);
  }
  if (typeof deflate !== 'boolean' && (typeof deflate !== 'object' || deflate === null)) {
    throw new TypeError(`WebSockets option "deflate" must be a boolean or an options object, got ${describeValue(deflate)}`);
  }
  const factories = deflate === false ? [...extensions] : [...extensions, permessageDeflate(deflate === true ? {} : deflate)];
  checkExtensionFactories(factories);
  return factories;
}
