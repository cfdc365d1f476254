/**
 * Turns a discovered route into what takes its upgrades, the way Nest runs
 * an HTTP route: a DI context per session for REQUEST-scoped controllers,
 * then guards, interceptors and pipes with the upgrade request, and only
 * then the 101 and the method. An error before the 101 goes through the
 * exception filters as an HTTP error (a real HTTP answer); one after it
 * goes through them as a WebSocket error and ends in a close code.
 */
import type { Socket } from 'node:net';
import { HttpException, HttpStatus, Injectable, Logger, RequestMethod, type HttpServer } from '@nestjs/common';
import { ApplicationConfig, ContextIdFactory, ExternalContextCreator, type ContextId } from '@nestjs/core';
import type { ExceptionsHandler } from '@nestjs/core/exceptions/exceptions-handler.js';
import { ExternalExceptionFilterContext } from '@nestjs/core/exceptions/external-exception-filter-context.js';
import type { ExternalExceptionsHandler } from '@nestjs/core/exceptions/external-exceptions-handler.js';
import type { NestContainer } from '@nestjs/core/injector/container.js';
import {
  ContextUtils,
  ExecutionContextHost,
  GuardsConsumer,
  GuardsContextCreator,
  Injector,
  InterceptorsConsumer,
  InterceptorsContextCreator,
  PipesConsumer,
  PipesContextCreator,
  REQUEST_CONTEXT_ID,
  STATIC_CONTEXT,
} from '@nestjs/core/internal';
import { RouteParamsFactory } from '@nestjs/core/router/route-params-factory.js';
import { RouterExceptionFilters } from '@nestjs/core/router/router-exception-filters.js';
import { RouterExecutionContext } from '@nestjs/core/router/router-execution-context.js';
import { isObservable, lastValueFrom } from 'rxjs';
import { CloseCode, CloseReason, fitCloseMessage } from '../protocol/close-reason.js';
import type { RouteCandidate, RouteUpgradeHandler } from '../routing/mapped-websocket-route.js';
import type { DiscoveredWebSocketRoute } from '../routing/websocket-routes.explorer.js';
import { isConnectionGoneError, type BaseWebSocketSession } from '../session/base-websocket-session.js';
import { WebSocketCloseException } from '../session/websocket-close.exception.js';
import type { PendingSession } from '../upgrade/websocket-upgrade.js';
import { createUpgradeExchange, type UpgradeExchange } from './upgrade-exchange.js';

// Nest's context creators take any function; the method's own signature is the user's business.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type RouteMethod = (...args: any[]) => any;
type Pipeline = (pending: PendingSession<RouteCandidate>, exchange: UpgradeExchange) => Promise<void>;
type Phase = 'deciding' | 'open' | 'gone';

const INTERNAL_ERROR = new CloseReason(CloseCode.INTERNAL_ERROR, 'Internal server error');
/** `@Next()` has no Express `next` to give on an upgrade. */
const noNext = () => undefined;

@Injectable()
export class WebSocketRouteHandlerFactory {
  private readonly logger = new Logger('WebSocketRoutes');
  private readonly container: NestContainer;
  private readonly contextUtils = new ContextUtils();
  private readonly injector = new Injector();
  private readonly pipesContextCreator: PipesContextCreator;
  private readonly guardsContextCreator: GuardsContextCreator;
  private readonly interceptorsContextCreator: InterceptorsContextCreator;
  private readonly interceptorsConsumer = new InterceptorsConsumer();
  private readonly webSocketFilters: ExternalExceptionFilterContext;

  constructor(
    externalContextCreator: ExternalContextCreator,
    private readonly config: ApplicationConfig,
  ) {
    // Nest's own context creators need the container; ExternalContextCreator is how Nest hands it to libraries.
    const container = (externalContextCreator as unknown as { container?: NestContainer }).container;
    if (container === undefined) throw new Error('nest-websocket-routes: this version of @nestjs/core is not supported');
    this.container = container;
    this.pipesContextCreator = new PipesContextCreator(container, config);
    this.guardsContextCreator = new GuardsContextCreator(container, config);
    this.interceptorsContextCreator = new InterceptorsContextCreator(container, config);
    this.webSocketFilters = new ExternalExceptionFilterContext(container, config);
  }

  create(route: DiscoveredWebSocketRoute, httpAdapter: HttpServer): RouteUpgradeHandler {
    const nest = {
      execution: new RouterExecutionContext(
        new RouteParamsFactory(this.config),
        this.pipesContextCreator,
        new PipesConsumer(),
        this.guardsContextCreator,
        new GuardsConsumer(),
        this.interceptorsContextCreator,
        this.interceptorsConsumer,
        httpAdapter,
      ),
      httpFilters: new RouterExceptionFilters(this.container, this.config, httpAdapter),
      httpAdapter,
    };
    const { controller, moduleKey, methodName } = route;
    const open = (pending: PendingSession<RouteCandidate>) =>
      createUpgradeExchange(httpAdapter, pending.session.call.request, pending.session.call.request.socket as Socket, pending.session);
    if (controller.isDependencyTreeStatic()) {
      const pipeline = this.pipeline(nest, route, controller.instance, STATIC_CONTEXT);
      return (pending) => pipeline(pending, open(pending));
    }
    const module = this.container.getModuleByKey(moduleKey);
    if (module === undefined) throw new Error(`${route.name}: module ${moduleKey} not found`);
    const isDurable = controller.isDependencyTreeDurable();
    return async (pending) => {
      const exchange = open(pending);
      let pipeline: Pipeline;
      try {
        const contextId = this.contextIdOf(exchange.request, isDurable);
        const instance = await this.injector.loadPerContext(controller.instance, module, module.controllers, contextId, controller);
        pipeline = this.pipeline(nest, route, instance, contextId);
      } catch (error) {
        const method = (controller.instance as Record<string, RouteMethod>)[methodName];
        this.refuse(error, nest.httpFilters.create(controller.instance, method, moduleKey), exchange);
        return;
      }
      await pipeline(pending, exchange);
    };
  }

  /** One DI context per session, as Nest makes one per HTTP request: REQUEST is the upgrade request. */
  private contextIdOf(request: object, isDurable: boolean): ContextId {
    const contextId = ContextIdFactory.getByRequest(request);
    if (!(REQUEST_CONTEXT_ID in request)) {
      Object.defineProperty(request, REQUEST_CONTEXT_ID, { value: contextId, enumerable: false });
      const requestProviderValue = isDurable ? contextId.payload : Object.assign(request, contextId.payload);
      this.container.registerRequestProvider(requestProviderValue, contextId);
    }
    return contextId;
  }

  private pipeline(
    nest: { execution: RouterExecutionContext; httpFilters: RouterExceptionFilters; httpAdapter: HttpServer },
    route: DiscoveredWebSocketRoute,
    instance: object,
    contextId: ContextId,
  ): Pipeline {
    const { moduleKey, methodName } = route;
    const inquirerId = route.controller.id;
    const method = (instance as Record<string, RouteMethod>)[methodName];
    const { argsLength, paramtypes, getParamsMetadata } = nest.execution.getMetadata(
      instance,
      method,
      methodName,
      moduleKey,
      RequestMethod.GET,
      'http',
    );
    const paramsOptions = this.contextUtils.mergeParamsMetatypes(getParamsMetadata(moduleKey, contextId, inquirerId), paramtypes);
    const enhancerArgs = [instance, method, moduleKey, contextId, inquirerId] as const;
    const canActivate = nest.execution.createGuardsFn(this.guardsContextCreator.create(...enhancerArgs), instance, method, 'http');
    const applyPipes = nest.execution.createPipesFn(this.pipesContextCreator.create(...enhancerArgs), paramsOptions);
    const interceptors = this.interceptorsContextCreator.create(...enhancerArgs);
    const httpFilters = nest.httpFilters.create(...enhancerArgs);
    const webSocketFilters = this.webSocketFilters.create(...enhancerArgs);
    // A method with no decorated parameter takes the session, as a plain `(session) => ...` handler.
    const takesSession = paramsOptions.length === 0;

    return async (pending, exchange) => {
      const { session } = pending;
      const { request, response } = exchange;
      const httpArgs = [request, response, noNext];
      const upgrade: { phase: Phase } = { phase: 'deciding' };
      const invoke = async () => {
        const args = this.contextUtils.createNullArray(argsLength);
        if (applyPipes) await applyPipes(args, request, response, noNext);
        if (!pending.accept()) {
          upgrade.phase = 'gone';
          return undefined;
        }
        exchange.release();
        upgrade.phase = 'open';
        return takesSession ? method.call(instance, session) : method.apply(instance, args);
      };
      try {
        if (canActivate) await canActivate(httpArgs);
        const result: unknown = await this.interceptorsConsumer.intercept(interceptors, httpArgs, instance, method, invoke, 'http');
        const value = isObservable(result) ? await lastValueFrom(result, { defaultValue: undefined }) : result;
        // An interceptor that answers without calling the handler answers the upgrade request, as it would a GET.
        if (upgrade.phase === 'deciding') nest.httpAdapter.reply(response, value, HttpStatus.OK);
        else if (upgrade.phase === 'open') await session.finish();
      } catch (error) {
        if (upgrade.phase === 'deciding') this.refuse(error, httpFilters, exchange);
        else if (upgrade.phase === 'open') await session.finish(await this.closeReasonFor(error, webSocketFilters, session));
      }
    };
  }

  /** An error before the 101: the HTTP exception filters answer it, as on an HTTP route (Nest logs unknown errors). */
  private refuse(error: unknown, filters: ExceptionsHandler, exchange: UpgradeExchange): void {
    if (error instanceof HttpException) {
      this.logger.warn(`Refused upgrade of ${exchange.request.url ?? '?'} with ${error.getStatus()}: ${error.message}`);
    }
    const host = new ExecutionContextHost([exchange.request, exchange.response, noNext]);
    host.setType('http');
    try {
      filters.next(error as Error, host);
    } catch (filterError) {
      this.logger.error(`An exception filter failed on ${exchange.request.url ?? '?'}: ${String(filterError)}`, (filterError as Error)?.stack);
      exchange.abort();
    }
  }

  /**
   * An error after the 101: the exception filters see it in a 'ws' context
   * (`switchToWs().getClient()` is the session) and may return the
   * CloseReason to close with; unhandled, it closes with 1011 (Nest logs it),
   * 1008 for a 4xx HttpException, or a WebSocketCloseException's own code.
   */
  private async closeReasonFor(
    error: unknown,
    filters: ExternalExceptionsHandler,
    session: BaseWebSocketSession,
  ): Promise<CloseReason | undefined> {
    if (isConnectionGoneError(error)) return undefined;
    const host = new ExecutionContextHost([session]);
    host.setType('ws');
    let handled: unknown;
    try {
      handled = await filters.next(error as Error, host);
    } catch (unhandled) {
      if (unhandled !== error && !(unhandled instanceof WebSocketCloseException)) {
        this.logger.error(`An exception filter failed on ${session.call.path}: ${String(unhandled)}`, (unhandled as Error)?.stack);
      } else if (!(error instanceof Error)) {
        this.logger.error(`Handler for ${session.call.path} failed: ${String(error)}`);
      }
      return closeReasonOf(unhandled);
    }
    if (handled instanceof CloseReason) return handled;
    if (handled instanceof WebSocketCloseException) return handled.closeReason;
    return INTERNAL_ERROR;
  }
}

function closeReasonOf(error: unknown): CloseReason {
  if (error instanceof WebSocketCloseException) return error.closeReason;
  if (error instanceof HttpException && error.getStatus() >= 400 && error.getStatus() < 500) {
    return new CloseReason(CloseCode.VIOLATED_POLICY, fitCloseMessage(error.message));
  }
  return INTERNAL_ERROR;
}
