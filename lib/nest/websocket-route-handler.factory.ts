/**
 * Turns a discovered route into what takes its upgrades, the way Nest runs
 * an HTTP route: a DI context per session for REQUEST-scoped controllers,
 * then guards, interceptors and pipes with the upgrade request, and only
 * then the 101 and the method. An error before the 101 goes through the
 * exception filters as an HTTP error (a real HTTP answer); one after it
 * goes through them as a WebSocket error and ends in a close code.
 */
import { HttpStatus, Injectable, Logger, RequestMethod, type HttpServer } from '@nestjs/common';
import { ApplicationConfig, ContextIdFactory, ExternalContextCreator, type ContextId } from '@nestjs/core';
import type { NestContainer } from '@nestjs/core/injector/container.js';
import {
  ContextUtils,
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
import type { RouteCandidate, RouteUpgradeHandler, UpgradeOutcome } from '../routing/mapped-websocket-route.js';
import type { DiscoveredWebSocketRoute } from '../routing/websocket-routes.explorer.js';
import type { BaseWebSocketSession } from '../session/base-websocket-session.js';
import type { PendingSession } from '../upgrade/websocket-upgrade.js';
import { guardCheck } from './route-guards.js';
import { UpgradeExchanges, type UpgradeExchange } from './upgrade-exchange.js';
import { WebSocketExceptionFilterContext } from './websocket-exception-filters.js';
import { answerRefusal, closeReasonAfterFilters, noNext } from './websocket-route-errors.js';

// Nest's context creators take any function; the method's own signature is the user's business.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type RouteMethod = (...args: any[]) => any;
/**
 * Runs one upgrade and reports to `outcome` once it is over; `exchange` when the caller needed one
 * already, else the pipeline makes it if it needs one.
 */
type Pipeline = (pending: PendingSession<RouteCandidate>, exchange: UpgradeExchange | undefined, outcome: UpgradeOutcome) => void;

interface RoutePipeline {
  run: Pipeline;
  /** Guards, interceptors or pipes run before the 101, and may read the request; else only the method may, once running. */
  decides: boolean;
}
type Phase = 'deciding' | 'open' | 'gone';

/** A method that takes the session has no other arguments. */
const NO_ARGS: unknown[] = [];

/** Nest's HTTP route machinery for one HTTP adapter: parameters, guards and pipes, the HTTP exception filters, and the upgrade exchanges. */
interface HttpParts {
  adapter: HttpServer;
  execution: RouterExecutionContext;
  filters: RouterExceptionFilters;
  exchanges: UpgradeExchanges;
}

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
  private readonly guardsConsumer = new GuardsConsumer();
  private readonly webSocketFilters: WebSocketExceptionFilterContext;
  private http: HttpParts | undefined;

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
    this.webSocketFilters = new WebSocketExceptionFilterContext(container, config);
  }

  create(route: DiscoveredWebSocketRoute, httpAdapter: HttpServer): RouteUpgradeHandler {
    const http = this.httpParts(httpAdapter);
    const { controller, moduleKey, methodName } = route;
    if (controller.isDependencyTreeStatic()) {
      const { run, decides } = this.pipeline(http, route, controller.instance, STATIC_CONTEXT);
      return (pending, outcome) => {
        if (decides) http.exchanges.dress(pending.call);
        else http.exchanges.dressWhenRead(pending.call);
        run(pending, undefined, outcome);
      };
    }
    const module = this.container.getModuleByKey(moduleKey);
    if (module === undefined) throw new Error(`${route.name}: module ${moduleKey} not found`);
    const isDurable = controller.isDependencyTreeDurable();
    /** The pipeline of the session's own controller instance, or undefined when loading it failed (answered). */
    const load = async (exchange: UpgradeExchange): Promise<Pipeline | undefined> => {
      try {
        const contextId = this.contextIdOf(exchange.request, isDurable);
        const instance = await this.injector.loadPerContext(controller.instance, module, module.controllers, contextId, controller);
        return this.pipeline(http, route, instance, contextId).run;
      } catch (error) {
        const method = (controller.instance as Record<string, RouteMethod>)[methodName];
        const filters = http.filters.create(controller.instance, method, moduleKey);
        answerRefusal(error, filters, exchange, httpAdapter, this.logger);
        return undefined;
      }
    };
    return (pending, outcome) => {
      http.exchanges.dress(pending.call);
      // Made first: REQUEST-scoped providers (WEBSOCKET_SESSION) find the session through it while loading.
      const exchange = http.exchanges.create(pending.session);
      load(exchange)
        .then((pipeline) => (pipeline === undefined ? outcome.done() : pipeline(pending, exchange, outcome)))
        .catch((error: unknown) => outcome.failed(error));
    };
  }

  private httpParts(adapter: HttpServer): HttpParts {
    if (this.http?.adapter !== adapter) {
      const execution = new RouterExecutionContext(
        new RouteParamsFactory(this.config),
        this.pipesContextCreator,
        new PipesConsumer(),
        this.guardsContextCreator,
        this.guardsConsumer,
        this.interceptorsContextCreator,
        this.interceptorsConsumer,
        adapter,
      );
      const filters = new RouterExceptionFilters(this.container, this.config, adapter);
      this.http = { adapter, execution, filters, exchanges: new UpgradeExchanges(adapter) };
    }
    return this.http;
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
    http: HttpParts,
    route: DiscoveredWebSocketRoute,
    instance: object,
    contextId: ContextId,
  ): RoutePipeline {
    const { moduleKey, methodName } = route;
    const inquirerId = route.controller.id;
    const method = (instance as Record<string, RouteMethod>)[methodName];
    const { argsLength, paramtypes, getParamsMetadata } = http.execution.getMetadata(
      instance,
      method,
      methodName,
      moduleKey,
      RequestMethod.GET,
      'http',
    );
    const paramsOptions = this.contextUtils.mergeParamsMetatypes(getParamsMetadata(moduleKey, contextId, inquirerId), paramtypes);
    const enhancerArgs = [instance, method, moduleKey, contextId, inquirerId] as const;
    const checkGuards = guardCheck(this.guardsContextCreator.create(...enhancerArgs), this.guardsConsumer, instance, method);
    const applyPipes = http.execution.createPipesFn(this.pipesContextCreator.create(...enhancerArgs), paramsOptions);
    const interceptors = this.interceptorsContextCreator.create(...enhancerArgs);
    const httpFilters = http.filters.create(...enhancerArgs);
    const webSocketFilters = this.webSocketFilters.create(...enhancerArgs);
    // A method with no decorated parameter takes the session, as a plain `(session) => ...` handler.
    const takesSession = paramsOptions.length === 0;
    const exchangeOf = (pending: PendingSession<RouteCandidate>) => http.exchanges.create(pending.session);
    const refuse = (error: unknown, exchange: UpgradeExchange) => answerRefusal(error, httpFilters, exchange, http.adapter, this.logger);
    /** The method's arguments, through the pipes as for an HTTP route. */
    const argsFor = async ({ request, response }: UpgradeExchange): Promise<unknown[]> => {
      const args = this.contextUtils.createNullArray(argsLength);
      if (applyPipes) await applyPipes(args, request, response, noNext);
      return args;
    };
    /** The 101; false when the client left or shutdown began. Nothing HTTP may go out after it. */
    const admit = (pending: PendingSession<RouteCandidate>, exchange: UpgradeExchange | undefined): boolean => {
      if (!pending.accept()) return false;
      exchange?.release();
      return true;
    };
    const call = (session: BaseWebSocketSession, args: unknown[]): unknown =>
      takesSession ? method.call(instance, session) : method.apply(instance, args);
    const failed = async (session: BaseWebSocketSession, error: unknown) =>
      session.finish(await closeReasonAfterFilters(error, webSocketFilters, session, this.logger));

    /** Tells the router once `ending` (the session's end, a refusal) has run. */
    const report = (ending: Promise<unknown>, outcome: UpgradeOutcome): void => {
      ending.then(
        () => outcome.done(),
        (error: unknown) => outcome.failed(error),
      );
    };

    if (interceptors.length > 0) {
      const intercepted = async (pending: PendingSession<RouteCandidate>, given: UpgradeExchange | undefined): Promise<void> => {
        const { session } = pending;
        const exchange = given ?? exchangeOf(pending);
        const httpArgs = [exchange.request, exchange.response, noNext];
        let phase: Phase = 'deciding';
        const invoke = async () => {
          const args = await argsFor(exchange);
          if (!admit(pending, exchange)) {
            phase = 'gone';
            return undefined;
          }
          phase = 'open';
          return call(session, args);
        };
        try {
          await checkGuards?.(httpArgs);
          const result: unknown = await this.interceptorsConsumer.intercept(interceptors, httpArgs, instance, method, invoke, 'http');
          // The handler runs when an interceptor's observable is subscribed to: the phase is known after this.
          const value = isObservable(result) ? await lastValueFrom(result, { defaultValue: undefined }) : result;
          // An interceptor that answers without calling the handler answers the upgrade request, as it would a GET.
          if (phase === 'deciding') http.adapter.reply(exchange.response, value, HttpStatus.OK);
          else if (phase === 'open') await session.finish();
        } catch (error) {
          if (phase === 'deciding') refuse(error, exchange);
          else if (phase === 'open') await failed(session, error);
        }
      };
      return { run: (pending, given, outcome) => report(intercepted(pending, given), outcome), decides: true };
    }

    // Nothing wraps the method: the exchange is let go at the 101 instead of living as long as the session.
    const finish = async (session: BaseWebSocketSession, value: unknown) => {
      try {
        if (isObservable(value)) await lastValueFrom(value, { defaultValue: undefined });
        await session.finish();
      } catch (error) {
        await failed(session, error);
      }
    };
    // While the method runs (the session's whole life), one reaction waits on its promise, with the session
    // and the outcome: no suspended async function (its frame, registers and promise), and no second reaction
    // in the router. The same ticks either way.
    const run = (session: BaseWebSocketSession, args: unknown[], outcome: UpgradeOutcome): void => {
      let result: unknown;
      try {
        result = call(session, args);
      } catch (error) {
        report(failed(session, error), outcome);
        return;
      }
      Promise.resolve(result).then(
        (value) => report(finish(session, value), outcome),
        (error: unknown) => report(failed(session, error), outcome),
      );
    };
    // The 101 and the method, once nothing (more) is to be decided; an error answers the upgrade request.
    const accept: Pipeline = (pending, exchange, outcome) => {
      try {
        if (!admit(pending, exchange)) return outcome.done();
      } catch (error) {
        refuse(error, exchange ?? exchangeOf(pending));
        return outcome.done();
      }
      run(pending.session, NO_ARGS, outcome);
    };
    if (!checkGuards && !applyPipes) {
      // Nothing to decide before the 101, so no HTTP response to hand anyone: one is made only to answer an error.
      return { run: accept, decides: false };
    }
    /** Guards that answer later (a promise), then the pipes; the arguments once admitted, else undefined (answered). */
    const decide = async (
      pending: PendingSession<RouteCandidate>,
      exchange: UpgradeExchange,
      guarding: Promise<void> | void,
    ): Promise<unknown[] | undefined> => {
      try {
        await guarding;
        // Without pipes the method takes the session alone: no arguments to make, nor a turn to wait for them.
        const args = applyPipes ? await argsFor(exchange) : NO_ARGS;
        return admit(pending, exchange) ? args : undefined;
      } catch (error) {
        refuse(error, exchange);
        return undefined;
      }
    };
    // Not an async function: its frame would hold the exchange while the session runs.
    const decideThenRun: Pipeline = (pending, given, outcome) => {
      const exchange = given ?? exchangeOf(pending);
      let guarding: Promise<void> | void;
      try {
        guarding = checkGuards?.([exchange.request, exchange.response, noNext]);
      } catch (error) {
        refuse(error, exchange);
        return outcome.done();
      }
      // Guards that answered at once and no pipes: the 101 in this same turn.
      if (guarding === undefined && !applyPipes) return accept(pending, exchange, outcome);
      decide(pending, exchange, guarding)
        .then((args) => (args === undefined ? outcome.done() : run(pending.session, args, outcome)))
        .catch((error: unknown) => outcome.failed(error));
    };
    return { run: decideThenRun, decides: true };
  }
}
