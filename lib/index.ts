/** The public API of nest-websocket-routes. */
export { WebSocketsModule } from './nest/websockets.module.js';
export type { WebSocketsModuleOptions } from './nest/websockets-module-options.interface.js';
export { WebSocketRoute, type WebSocketRouteOptions } from './routing/websocket-route.decorator.js';
export { WsSession } from './nest/ws-session.decorator.js';
export { isWebSocketRoute } from './nest/is-websocket-route.js';
export { WEBSOCKET_SESSION } from './nest/websocket-session.provider.js';
export {
  WebSocketSessions,
  type WebSocketSessionsFilter,
  type WebSocketSessionsSelector,
  type BroadcastResult,
  type PublishOptions,
} from './routing/websocket-sessions.registry.js';
export type { PublishResult } from './routing/topic-hub.js';
export type { TopicMessage, TopicOptions } from './routing/topic-options.js';
export type { StreamPosition, SubscribeOptions, SubscribeResult } from './session/topic-membership.js';
export {
  WebSocketBrokerError,
  type BrokerEvents,
  type BrokerMessage,
  type HistoryRead,
  type PresenceEntry,
  type PresenceEvent,
  type TopicHistoryOptions,
  type TopicPayload,
  type WebSocketBroker,
} from './broker/websocket-broker.js';
export { InProcessBroker } from './broker/in-process.broker.js';
export { WebSocketCloseException } from './session/websocket-close.exception.js';
export { WebSocketUpgrade, type WebSocketUpgradeOptions } from './upgrade/websocket-upgrade.js';
export { Frame } from './protocol/frame.js';
export type { AllowedOrigin } from './protocol/origin-policy.js';
export { FrameType } from './protocol/frame-type.js';
export { CloseReason, CloseCode } from './protocol/close-reason.js';
export { WebSocketProtocolError } from './protocol/protocol-error.js';
export type {
  WebSocketSession,
  DefaultWebSocketSession,
  WebSocketServerSession,
  DefaultWebSocketServerSession,
  WebSocketCall,
  WebSocketApplicationContext,
  OutgoingChannel,
} from './session/websocket-session.js';
export {
  WebSocketExtensionHeader,
  type WebSocketExtension,
  type WebSocketExtensionFactory,
  type WebSocketExtensionLimits,
} from './protocol/websocket-extension.js';
export {
  permessageDeflate,
  PerMessageDeflateFactory,
  type PerMessageDeflateOptions,
  type PerMessageDeflateConfig,
} from './extensions/permessage-deflate.factory.js';
export type { WebSocketExtensionOptions } from './extensions/extension-options.js';
export type { ReceiveChannel } from './session/receive-channel.js';
export { ClosedReceiveChannelError, ClosedSendChannelError } from './session/channel-errors.js';
export {
  JsonWebSocketConverter,
  WebSocketDeserializeError,
  type WebSocketConverter,
} from './session/websocket-converter.js';
export type { WebSocketSessionOptions } from './session/websocket-session-options.js';
