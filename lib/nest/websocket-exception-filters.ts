/**
 * The exception filters that errors after the 101 go through: Nest's own
 * context for filters outside its HTTP router, except that each filter keeps
 * the name of its class. Nest's entries only hold a bound `catch`, and a
 * filter that fails in the 'ws' context must be named in the warning.
 */
import type { ExceptionFilter } from '@nestjs/common';
import type { ExceptionFilterMetadata } from '@nestjs/common/internal';
import { ExternalExceptionFilterContext } from '@nestjs/core/exceptions/external-exception-filter-context.js';

/** A filter class of the application, as the WebSocket routes know it. */
export interface FilterOrigin {
  readonly name: string;
  /** Whether its failure on a WebSocket route was reported: once per class is enough. */
  warned: boolean;
}

export interface WebSocketFilterMetadata extends ExceptionFilterMetadata {
  readonly origin: FilterOrigin;
}

type ContextId = Parameters<ExternalExceptionFilterContext['createConcreteContext']>[1];

export class WebSocketExceptionFilterContext extends ExternalExceptionFilterContext {
  /** One per filter class for the whole application: a class warns once, however many routes or instances use it. */
  private readonly origins = new Map<unknown, FilterOrigin>();

  override createConcreteContext<T extends unknown[], R extends unknown[]>(
    metadata: T | undefined,
    contextId?: ContextId,
    inquirerId?: string,
  ): R {
    // One filter at a time: Nest's entries do not say which filter they call.
    const entries = (metadata ?? []).flatMap((filter) =>
      super
        .createConcreteContext<[unknown], ExceptionFilterMetadata[]>([filter], contextId, inquirerId)
        .map((entry): WebSocketFilterMetadata => ({ ...entry, origin: this.originOf(filter as ExceptionFilter | Function) })),
    );
    return entries as R;
  }

  private originOf(filter: ExceptionFilter | Function): FilterOrigin {
    const filterClass = typeof filter === 'function' ? filter : filter.constructor;
    let origin = this.origins.get(filterClass);
    if (origin === undefined) {
      origin = { name: filterClass.name || 'An exception filter', warned: false };
      this.origins.set(filterClass, origin);
    }
    return origin;
  }
}
