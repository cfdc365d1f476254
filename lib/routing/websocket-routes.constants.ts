/** Metadata key under which `@WebSocketRoute` stores a method's route. */
export const WEBSOCKET_ROUTE_METADATA = 'nest-websocket-routes:route';
