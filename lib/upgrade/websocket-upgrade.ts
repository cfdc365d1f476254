/**
 * The opening handshake on a raw `(request, socket, head)` and the start of
 * a session on it, as Ktor's `WebSocketUpgrade`: the programmatic path, with
 * no decorator needed. The route router accepts connections through the same
 * `prepareSession`, so both paths answer the same way.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Logger } from '@nestjs/common';
import {
  checkProtocolOption,
  errorResponse,
  HandshakeError,
  offeredProtocols,
  switchingProtocolsResponse,
  validateUpgradeRequest,
} from '../protocol/handshake.js';
import { originPolicy, type AllowedOrigin, type OriginPolicy } from '../protocol/origin-policy.js';
import {
  negotiateExtensions,
  parseExtensionOffers,
  rsvBits,
  type WebSocketExtensionFactory,
} from '../protocol/websocket-extension.js';
import { offeredExtensionFactories, type WebSocketExtensionOptions } from '../extensions/extension-options.js';
import type { BaseWebSocketSession, SessionHandler } from '../session/base-websocket-session.js';
import { DefaultWebSocketServerSessionImpl } from '../session/default-websocket-session.js';
import { RawWebSocketServerSession } from '../session/raw-websocket-session.js';
import { WebSocketConnection } from '../session/websocket-connection.js';
import type {
  DefaultWebSocketServerSession,
  WebSocketApplicationContext,
  WebSocketServerSession,
} from '../session/websocket-session.js';
import {
  resolveSessionSettings,
  type SessionSettings,
  type WebSocketSessionOptions,
} from '../session/websocket-session-options.js';
import { parseRequestTarget, type RequestTarget } from './request-target.js';
import { UpgradeCall } from './upgrade-call.js';
import { shareHeaderStrings } from './shared-header-strings.js';

const logger = new Logger('WebSocketUpgrade');
const ignore = () => undefined;

/** Answers an upgrade request with an HTTP error, logs one line, and closes the socket. */
export function refuseUpgrade(
  request: IncomingMessage,
  socket: Duplex,
  status: number,
  message: string,
  headers?: Record<string, string>,
): void {
  logger.warn(`Refused upgrade of ${request.url ?? '?'} with ${status}: ${message}`);
  // Node drops its own 'error' listener before 'upgrade': without one, a reset while we write crashes the process.
  socket.on('error', ignore);
  if (socket.writable) {
    socket.once('finish', () => socket.destroy());
    socket.end(errorResponse(status, message, headers));
  } else {
    socket.destroy();
  }
}

/** One way to accept a connection: a route, or a WebSocketUpgrade. */
export interface UpgradeCandidate {
  /** The route's path pattern; the request path when there is no route. */
  route?: string;
  protocol: string | undefined;
  raw: boolean;
  settings: SessionSettings;
  /** Extensions offered; the client's offers pick among them. */
  extensions: readonly WebSocketExtensionFactory[];
  params: Readonly<Record<string, string>>;
  /** Whether the handshake's `Origin` may open it; else 403. */
  originAllowed: OriginPolicy;
}

/** The first candidate with that protocol (undefined: one that requires none). */
function withProtocol<T extends UpgradeCandidate>(candidates: readonly T[], protocol: string | undefined): T | undefined {
  // Indexed, not for-of: on every handshake, and V8 does not always optimize the iterators away (about 70 bytes each).
  for (let index = 0; index < candidates.length; index++) if (candidates[index].protocol === protocol) return candidates[index];
  return undefined;
}

/**
 * The candidate whose protocol comes first in the client's list; else one
 * that requires no protocol; else 400.
 */
function selectByProtocol<T extends UpgradeCandidate>(candidates: readonly T[], offered: readonly string[]): T {
  for (let index = 0; index < offered.length; index++) {
    const match = withProtocol(candidates, offered[index]);
    if (match !== undefined) return match;
  }
  const unprotected = withProtocol(candidates, undefined);
  if (unprotected !== undefined) return unprotected;
  const expected = candidates.map((candidate) => candidate.protocol).join(', ');
  const got = offered.length === 0 ? 'none' : offered.join(', ');
  throw new HandshakeError(400, `Unsupported subprotocol: this path accepts ${expected}; the client offered ${got}`);
}

/**
 * An upgrade request that passed the handshake checks, with its session
 * built but not started: what runs before the 101 (guards, pipes) can see
 * the session, and `accept()` is the moment the connection becomes a WebSocket.
 */
export interface PendingSession<T extends UpgradeCandidate = UpgradeCandidate> {
  readonly candidate: T;
  readonly session: BaseWebSocketSession;
  /** The session's `call`, as the class that can leave dressing its request for later. */
  readonly call: UpgradeCall;
  /** Writes the 101 and starts reading frames; false when the client is already gone or `admit` said no (503). */
  accept(): boolean;
}

/** What the caller of `prepareSession` learns of, or decides at, the moment of the 101. */
export interface AcceptHooks {
  /** False answers 503 instead of the 101 (e.g. shutdown began while guards were deciding). */
  admit?(): boolean;
  /** The 101 went out and the session is reading. */
  onAccept?(session: BaseWebSocketSession): void;
}

/** The hooks of a caller that has none. */
const NO_HOOKS: AcceptHooks = {};

/**
 * A PendingSession as one object holding what the 101 needs, rather than an
 * `accept` closure over prepareSession's variables and a record around it.
 */
class PreparedSession<T extends UpgradeCandidate> implements PendingSession<T> {
  private accepted = false;

  constructor(
    readonly candidate: T,
    readonly session: BaseWebSocketSession,
    readonly call: UpgradeCall,
    private readonly request: IncomingMessage,
    private readonly socket: Duplex,
    private readonly key: string,
    /** The Sec-WebSocket-Extensions answer; undefined when none was agreed. */
    private readonly agreed: string | undefined,
    private readonly hooks: AcceptHooks,
  ) {}

  accept(): boolean {
    if (this.accepted) throw new Error('PreparedSession.accept(): this upgrade was accepted already; accept() runs once per upgrade');
    this.accepted = true;
    const { socket } = this;
    // The client may be gone already (e.g. while a guard checked credentials): its 'end' or 'close' will not come again.
    if (socket.destroyed || !socket.writable || socket.readableEnded) {
      socket.destroy();
      return false;
    }
    if (this.hooks.admit?.() === false) {
      refuseUpgrade(this.request, socket, 503, 'Server is shutting down');
      return false;
    }
    socket.write(switchingProtocolsResponse(this.key, this.candidate.protocol, this.agreed));
    // From now on the request lives as long as the session. The request as it came: reading
    // session.call.request would dress it, which waits for a first read where nothing decided before the 101.
    shareHeaderStrings(this.request);
    this.session.open();
    this.hooks.onAccept?.(this.session);
    return true;
  }
}

/**
 * Checks the handshake and picks a candidate by subprotocol; answers an HTTP
 * error and returns undefined when either fails.
 */
export function prepareSession<T extends UpgradeCandidate>(
  request: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  target: RequestTarget,
  candidates: readonly T[],
  application: WebSocketApplicationContext | undefined,
  hooks: AcceptHooks = NO_HOOKS,
): PendingSession<T> | undefined {
  let key: string;
  let chosen: T;
  let offers: ReturnType<typeof parseExtensionOffers>;
  try {
    key = validateUpgradeRequest(request.method, request.headers);
    offers = parseExtensionOffers(request.headers['sec-websocket-extensions']);
    chosen = selectByProtocol(candidates, offeredProtocols(request.headers));
    const { origin, host } = request.headers;
    if (!chosen.originAllowed(origin, host)) throw new HandshakeError(403, `Origin not allowed: ${origin}`);
  } catch (error) {
    if (!(error instanceof HandshakeError)) throw error;
    refuseUpgrade(request, socket, error.status, error.message, error.headers);
    return undefined;
  }
  const call = new UpgradeCall(request, target, chosen.route ?? target.pathname, chosen.params, chosen.protocol);
  const extensions = negotiateExtensions(chosen.extensions, offers, { maxIncomingSize: chosen.settings.maxMessageSize });
  const allowedRsv = extensions.reduce((bits, extension) => bits | rsvBits(extension.factory), 0);
  const { maxFrameSize, closeTimeout } = chosen.settings;
  const connection = new WebSocketConnection(socket as Socket, head, maxFrameSize, closeTimeout, allowedRsv, !chosen.raw);
  const Session = chosen.raw ? RawWebSocketServerSession : DefaultWebSocketServerSessionImpl;
  const session = new Session(connection, call, application, chosen.settings, extensions);
  const agreed = extensions.length === 0 ? undefined : extensions.map((extension) => extension.response.toString()).join(', ');
  return new PreparedSession(chosen, session, call, request, socket, key, agreed, hooks);
}

export interface WebSocketUpgradeOptions extends WebSocketSessionOptions, WebSocketExtensionOptions {
  /** Browser origins that may connect; without it, only pages of the server's own origin (and non-browser clients). */
  allowedOrigins?: AllowedOrigin[];
  /** Subprotocol the client must offer; it is echoed in the 101 response. */
  protocol?: string;
  /** Start a raw session (the default, as Ktor's WebSocketUpgrade), or a default session with `false`. */
  raw?: boolean;
  /** A raw session negotiates `deflate` and `extensions` only with this. Default false. */
  negotiateExtensions?: boolean;
  /** What `session.application` returns: your Nest `app`, or an injected `ModuleRef`. */
  application?: WebSocketApplicationContext;
}

type UpgradeHandler<Raw> = (session: Raw extends false ? DefaultWebSocketServerSession : WebSocketServerSession) => unknown;

/**
 * Handles one upgrade request outside decorated routes, e.g. in your own
 * `server.on('upgrade')` listener: `await upgrade.handle(request, socket, head)`.
 * Its sessions are yours: application shutdown does not close them.
 */
export class WebSocketUpgrade<Raw extends boolean = true> {
  private readonly settings: SessionSettings;
  private readonly extensions: readonly WebSocketExtensionFactory[];
  private readonly originAllowed: OriginPolicy;

  constructor(
    private readonly options: WebSocketUpgradeOptions & { raw?: Raw },
    private readonly handler: UpgradeHandler<Raw>,
  ) {
    this.settings = resolveSessionSettings(options);
    this.extensions = offeredExtensionFactories({ raw: options.raw ?? true, negotiateExtensions: options.negotiateExtensions }, options);
    this.originAllowed = originPolicy(options.allowedOrigins);
    checkProtocolOption(options.protocol);
  }

  /**
   * Checks the handshake, answers 101 (or an HTTP error), and runs the handler.
   * Resolves when the connection is gone, or at once when the upgrade was refused.
   */
  async handle(request: IncomingMessage, socket: Duplex, head: Buffer, params: Record<string, string> = {}): Promise<void> {
    const target = parseRequestTarget(request);
    if (target === undefined) {
      refuseUpgrade(request, socket, 400, 'Malformed request target');
      return;
    }
    const candidate: UpgradeCandidate = {
      protocol: this.options.protocol,
      raw: this.options.raw ?? true,
      settings: this.settings,
      extensions: this.extensions,
      // Frozen, as a route's: the caller's object is not the session's to share.
      params: Object.freeze({ ...params }),
      originAllowed: this.originAllowed,
    };
    let pending: PendingSession | undefined;
    try {
      pending = prepareSession(request, socket, head, target, [candidate], this.options.application);
    } catch (error) {
      // A bug before the 101 (an extension's negotiate, say): the client gets an answer, as on a route.
      logger.error(`Upgrade of ${target.pathname} failed: ${String(error)}`, (error as Error)?.stack);
      refuseUpgrade(request, socket, 500, 'Internal server error');
      return;
    }
    if (pending === undefined || !pending.accept()) return;
    await pending.session.run(this.handler as SessionHandler).catch((error: unknown) => {
      logger.error(`Session on ${target.pathname} failed: ${String(error)}`, (error as Error)?.stack);
      pending.session.terminate();
    });
  }
}
