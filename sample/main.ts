/** Starts the sample app: `npm start` (PORT, default 3000; REDIS_URL to share rooms with other instances). */
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule, SAMPLE_ROUTES } from './app.module.js';
import { describeBroker } from './broker.js';

async function bootstrap(): Promise<void> {
  const app = await NestFactory.create(AppModule);
  app.enableShutdownHooks();
  const port = Number(process.env.PORT ?? 3000);
  await app.listen(port);
  const logger = new Logger('Sample');
  for (const [path, what] of SAMPLE_ROUTES) logger.log(`ws://localhost:${port}${path}  ${what}`);
  logger.log(`http://localhost:${port}/  chat page (open it in two tabs)`);
  logger.log(`Topics: ${describeBroker()}`);
}

void bootstrap();
