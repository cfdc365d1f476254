/**
 * `@WsSession()`: the parameter decorator that hands a route method its
 * session, next to Nest's own `@Param()`, `@Query()`, `@Headers()`, `@Req()`.
 * Named apart from `@nestjs/common`'s `@Session()` (the HTTP session).
 */
import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { sessionOfRequest } from './upgrade-exchange.js';

export const WsSession = createParamDecorator((_data: unknown, context: ExecutionContext) =>
  sessionOfRequest(context.switchToHttp().getRequest()),
);
