/** A Nest LoggerService that keeps the debug lines, warnings and errors it is told, for `app.useLogger()` in tests. */
import type { LoggerService } from '@nestjs/common';

export class RecordingLogger implements LoggerService {
  debugs: string[] = [];
  warns: string[] = [];
  errors: string[] = [];
  log() {}
  debug(message: unknown) {
    this.debugs.push(String(message));
  }
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
    this.debugs = [];
    this.warns = [];
    this.errors = [];
  }
}
