/**
 * What becomes of an error thrown on a route's upgrade: before the 101 the
 * HTTP exception filters answer it with HTTP, as on an HTTP route; after it
 * the filters see it in a 'ws' context and the session closes with a code.
 * Neither a failing filter nor a bad CloseReason may leave the client
 * without an answer or take the process down.
 */
import type { HttpServer, LoggerService } from '@nestjs/common';
import { HttpException, IntrinsicException } from '@nestjs/common';
import type { ExceptionFilterMetadata } from '@nestjs/common/internal';
import { selectExceptionFilterMetadata } from '@nestjs/common/internal';
import type { ExceptionsHandler } from '@nestjs/core/exceptions/exceptions-handler.js';
import type { ExternalExceptionsHandler } from '@nestjs/core/exceptions/external-exceptions-handler.js';
import { ExecutionContextHost } from '@nestjs/core/internal';
import { isObservable, lastValueFrom } from 'rxjs';
import { CloseReason, fitCloseMessage, isValidWireCloseCode } from '../protocol/close-reason.js';
import type { BaseWebSocketSession } from '../session/base-websocket-session.js';
import { handlerFailure, INTERNAL_ERROR, isConnectionGoneError } from '../session/handler-failure.js';
import { WebSocketCloseException } from '../session/websocket-close.exception.js';
import type { UpgradeExchange } from './upgrade-exchange.js';
import type { FilterOrigin, WebSocketFilterMetadata } from './websocket-exception-filters.js';

/** `@Next()` has no Express `next` to give on an upgrade. */
export const noNext = () => undefined;

/**
 * An error before the 101, through the filters as Nest's ExceptionsHandler
 * runs them (the first matching filter, else Nest's default answer), except
 * that a filter that throws or rejects gets the client a 500 and one error
 * line, where Nest's loop would leave an unhandled rejection.
 */
export function answerRefusal(
  error: unknown,
  handler: ExceptionsHandler,
  exchange: UpgradeExchange,
  httpAdapter: HttpServer,
  logger: LoggerService,
): void {
  const url = exchange.request.url ?? '?';
  if (error instanceof IntrinsicException) {
    const status = error instanceof HttpException ? error.getStatus() : 500;
    logger.warn(`Refused upgrade of ${url} with ${status}: ${error.message}`);
  }
  const host = new ExecutionContextHost([exchange.request, exchange.response, noNext]);
  host.setType('http');
  const failed = (filterError: unknown) => {
    logger.error(`An exception filter failed on ${url}: ${String(filterError)}`, (filterError as Error)?.stack);
    exchange.abort();
  };
  // A filter written for another context returns what that context sends and leaves the request unanswered.
  const leftUnanswered = (result: unknown) =>
    (isObservable(result) || result instanceof Error) && !httpAdapter.isHeadersSent(exchange.response);
  try {
    const filter = selectExceptionFilterMetadata(customFiltersOf(handler), error);
    if (filter === undefined) {
      handler.catch(error as Error, host);
      return;
    }
    const result: unknown = filter.func(error, host);
    if (result instanceof Promise) {
      result.then((value) => leftUnanswered(value) && handler.catch(error as Error, host)).catch(failed);
    } else if (leftUnanswered(result)) {
      handler.catch(error as Error, host);
    }
  } catch (filterError) {
    failed(filterError);
  }
}

/** The filters Nest's context put in the handler, most specific first. */
function customFiltersOf<Metadata extends ExceptionFilterMetadata = ExceptionFilterMetadata>(
  handler: ExceptionsHandler | ExternalExceptionsHandler,
): Metadata[] {
  return (handler as unknown as { filters: Metadata[] }).filters;
}

/**
 * An error after the 101: the filters see it in a 'ws' context
 * (`switchToWs().getClient()` is the session) and may return the CloseReason
 * to close with. Unhandled, or when the filter fails (one written for HTTP
 * only reaches for a response there is none of), it closes as
 * `handlerFailure` says. Logged once: Nest's handler logs plain errors, this
 * logs the rest.
 */
export async function closeReasonAfterFilters(
  error: unknown,
  handler: ExternalExceptionsHandler,
  session: BaseWebSocketSession,
  logger: LoggerService,
): Promise<CloseReason | undefined> {
  if (isConnectionGoneError(error)) return undefined;
  const path = session.call.path;
  const host = new ExecutionContextHost([session]);
  host.setType('ws');
  // Selected here rather than by handler.next(), which would not say which filter failed.
  const filter = selectExceptionFilterMetadata(customFiltersOf<WebSocketFilterMetadata>(handler), error) as
    | WebSocketFilterMetadata
    | undefined;
  let handled: unknown;
  if (filter !== undefined) {
    try {
      const result: unknown = filter.func(error, host);
      handled = await (isObservable(result) ? lastValueFrom(result, { defaultValue: undefined }) : result);
    } catch (thrown) {
      // Throwing a WebSocketCloseException chooses its close; rethrowing the error leaves it unhandled.
      if (thrown instanceof WebSocketCloseException) handled = thrown;
      else if (thrown !== error) reportFailedFilter(filter.origin, thrown, path, logger);
    }
  }
  if (handled === undefined) return unhandledCloseReason(error, handler, host, path, logger);
  const chosen = handled instanceof WebSocketCloseException ? handled.closeReason : handled;
  if (!(chosen instanceof CloseReason)) return INTERNAL_ERROR;
  if (!isValidWireCloseCode(chosen.code)) {
    logger.warn(`An exception filter chose close code ${chosen.code} on ${path}, which may not be sent: closing with 1011`);
    return INTERNAL_ERROR;
  }
  return new CloseReason(chosen.code, fitCloseMessage(chosen.message));
}

/** No filter chose the close: Nest's own handler logs a plain error, as on an HTTP route, and `handlerFailure` picks the code. */
function unhandledCloseReason(
  error: unknown,
  handler: ExternalExceptionsHandler,
  host: ExecutionContextHost,
  path: string,
  logger: LoggerService,
): CloseReason | undefined {
  try {
    handler.catch(error as Error, host);
  } catch {
    // Nest's default always throws the error back: that is how it says "not handled".
  }
  const { reason, level } = handlerFailure(error);
  if (level !== 'error' || !(error instanceof Error)) {
    logger[level]?.(`Closing ${path} with ${reason?.code}: ${String(error)}`);
  }
  return reason;
}

/**
 * A filter that fails after the 101 is most often Nest's documented HTTP
 * filter, used globally: said once per filter class with the way to fix it,
 * since a busy route would otherwise repeat it for every session.
 */
function reportFailedFilter(origin: FilterOrigin, failure: unknown, path: string, logger: LoggerService): void {
  if (origin.warned) {
    logger.debug?.(`${origin.name} failed on ${path} after the 101 again: ${String(failure)}`);
    return;
  }
  origin.warned = true;
  logger.warn(
    `${origin.name} failed on the WebSocket route ${path} after the 101 (${String(failure)}), so the session closes with ` +
      `the default code: 1008 for a 4xx HttpException, a WebSocketCloseException's own code, else 1011. After the 101, ` +
      `filters run with host.getType() === 'ws': check it before host.switchToHttp() to handle both. ` +
      `Said once per filter class.`,
  );
}
