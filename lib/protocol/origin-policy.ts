/**
 * Which browser origins may open a WebSocket (RFC 6455 §10.2), against
 * cross-site WebSocket hijacking: a page on another site would otherwise
 * open sessions with the visitor's cookies. Browsers always send `Origin`
 * on a WebSocket handshake; a request without one is not from a browser
 * page, and cookies are not a browser's to lend there, so it passes.
 */
import { describeValue } from './describe-value.js';

/**
 * An allowed origin: exact (`https://app.example.com`, scheme, host and
 * port as the browser serializes them), a pattern with `*` for one or more
 * host labels (`https://*.example.com`), `'null'` (sandboxed pages, files),
 * `'*'` for any origin, or a RegExp tested against the whole `Origin` value.
 */
export type AllowedOrigin = string | RegExp;

/** Whether a handshake with this `Origin` (and `Host`) header may proceed. */
export type OriginPolicy = (origin: string | undefined, host: string | undefined) => boolean;

const EXACT_ORIGIN = /^[a-z][a-z0-9+.-]*:\/\/[^/?#\s]+$/i;

/**
 * The policy for `allowed`; without a list, same-origin: the `Origin`'s
 * host and port must be the request's `Host`. Throws TypeError naming the
 * entry that is neither an origin, a pattern, `'null'`, `'*'` nor a RegExp.
 */
export function originPolicy(allowed?: readonly AllowedOrigin[]): OriginPolicy {
  if (allowed === undefined) return sameOrigin;
  if (!Array.isArray(allowed)) throw new TypeError(`WebSockets option "allowedOrigins" must be an array, got ${describeValue(allowed)}`);
  const rules = allowed.map(ruleOf);
  return (origin) => origin === undefined || rules.some((rule) => rule(origin));
}

function sameOrigin(origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined) return true;
  if (host === undefined || !EXACT_ORIGIN.test(origin)) return false;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  const { protocol, host: originHost } = url;
  if (protocol !== 'http:' && protocol !== 'https:') return false;
  const defaultPort = protocol === 'https:' ? ':443' : ':80';
  // The URL parser drops a default port from `Origin`; a client may still write it in `Host`.
  const requestHost = host.toLowerCase().endsWith(defaultPort) ? host.slice(0, -defaultPort.length) : host;
  return originHost === requestHost.toLowerCase();
}

function ruleOf(entry: AllowedOrigin): (origin: string) => boolean {
  if (entry instanceof RegExp) {
    const matcher = new RegExp(entry.source, entry.flags.replace(/[gy]/g, '')); // stateless: no lastIndex between tests
    return (origin) => matcher.test(origin);
  }
  if (typeof entry !== 'string') throw new TypeError(`WebSockets option "allowedOrigins" has an entry that is not a string or RegExp: ${describeValue(entry)}`);
  if (entry === '*') return () => true;
  if (entry === 'null') return (origin) => origin === 'null';
  if (!EXACT_ORIGIN.test(entry)) {
    throw new TypeError(`WebSockets option "allowedOrigins" has "${entry}", which is not an origin like https://app.example.com`);
  }
  const lower = entry.toLowerCase();
  if (!lower.includes('*')) return (origin) => origin.toLowerCase() === lower;
  // `*` stands for one or more host labels: https://*.example.com takes https://a.b.example.com, not https://example.com.
  const pattern = lower.split('*').map(escapeRegExp).join('[a-z0-9-]+(?:\\.[a-z0-9-]+)*');
  const matcher = new RegExp(`^${pattern}$`);
  return (origin) => matcher.test(origin.toLowerCase());
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
