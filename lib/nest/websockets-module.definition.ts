/** The configurable-module plumbing behind `forRoot` / `forRootAsync`. */
import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { WebSocketsModuleOptions } from './websockets-module-options.interface.js';

export const {
  ConfigurableModuleClass: ConfigurableWebSocketsModule,
  MODULE_OPTIONS_TOKEN: WEBSOCKETS_MODULE_OPTIONS,
  OPTIONS_TYPE: WEBSOCKETS_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: WEBSOCKETS_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<WebSocketsModuleOptions>()
  .setClassMethodName('forRoot')
  .setExtras({ isGlobal: false }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
  .build();
