/** A Nest LoggerService that keeps the warnings and errors it is told, for `app.useLogger()` in tests. */
import type { LoggerService } from '@nestjs/common';

export class RecordingLogger implements LoggerService {
  warns: string[] = [];
  errors: string[] = [];
  log() {}
  debug() {}
  verbose() {}
  warn(message: unknown) {
    this.warns.push(String(message));
  }
  error(message: unknown) {
    this.errors.push(String(message));
  }
  fatal(message: unknown) {
    this.errors.push(String(message));
  }
  reset() {
    this.warns = [];
    this.errors = [];
  }
}
