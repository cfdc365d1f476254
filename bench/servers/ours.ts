/** The `ours` echo server: this library through the full Nest stack, the sample AppModule's `/echo` default-session route. */
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { AppModule } from '../../sample/app.module.js';
import { listenOnLoopback, type RunningServer } from './listen.js';

export async function start(): Promise<RunningServer> {
  return listenOnLoopback(await NestFactory.create(AppModule, { logger: false }), '/echo');
}
