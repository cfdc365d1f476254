/** The configurable-module plumbing behind `forRoot` / `forRootAsync`. */
import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { WebSocketsModuleOptions } from './websockets-module-options.interface.js';

export const {
  ConfigurableModuleClass: ConfigurableWebSocketsModule,
  MODULE_OPTIONS_TOKEN: WEBSOCKETS_MODULE_OPTIONS,
  OPTIONS_TYPE: WEBSOCKETS_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<WebSocketsModuleOptions>()
  .setClassMethodName('forRoot')
  // Global by default, as the registry and WEBSOCKET_SESSION are meant to be injected anywhere (like REQUEST).
  .setExtras({ isGlobal: true }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
  .build();
