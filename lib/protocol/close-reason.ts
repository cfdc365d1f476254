/**
 * Close codes and the close reason carried by a Close frame (RFC 6455 §7.4),
 * with Ktor's `CloseReason.Codes` names.
 */
export enum CloseCode {
  NORMAL = 1000,
  GOING_AWAY = 1001,
  PROTOCOL_ERROR = 1002,
  CANNOT_ACCEPT = 1003,
  /** Reserved: reported locally when the connection ended without a Close frame; never sent. */
  CLOSED_ABNORMALLY = 1006,
  NOT_CONSISTENT = 1007,
  VIOLATED_POLICY = 1008,
  TOO_BIG = 1009,
  NO_EXTENSION = 1010,
  INTERNAL_ERROR = 1011,
  SERVICE_RESTART = 1012,
  TRY_AGAIN_LATER = 1013,
}

export class CloseReason {
  static readonly Codes = CloseCode;

  constructor(
    readonly code: number,
    readonly message: string = '',
  ) {}

  /** The named code, or undefined for application codes (3000-4999) and unknown ones. */
  get knownReason(): CloseCode | undefined {
    return CloseCode[this.code] === undefined ? undefined : (this.code as CloseCode);
  }

  toString(): string {
    const name = CloseCode[this.code] ?? this.code;
    return `CloseReason(reason=${name}, message=${this.message})`;
  }
}

/**
 * Whether a peer may put this code on the wire (RFC 6455 §7.4.1 and the IANA
 * registry): 1004, 1005, 1006 and 1015 are reserved, 1016-2999 unassigned.
 */
export function isValidWireCloseCode(code: number): boolean {
  return (
    (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
    (code >= 3000 && code <= 4999)
  );
}

/** Bytes a close reason may carry: a control frame's 125 less the 2-byte code (RFC 6455 §5.5). */
export const MAX_CLOSE_MESSAGE_BYTES = 123;

/** `message` cut to at most 123 UTF-8 bytes, on a character boundary, so it always fits a Close frame. */
export function fitCloseMessage(message: string): string {
  if (Buffer.byteLength(message, 'utf8') <= MAX_CLOSE_MESSAGE_BYTES) return message;
  let end = MAX_CLOSE_MESSAGE_BYTES;
  const bytes = Buffer.from(message, 'utf8');
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--; // back up out of a multi-byte character
  return bytes.subarray(0, end).toString('utf8');
}

/** `reason` with its message cut to fit a Close frame: a long message (an error text, say) must not stop a close. */
export function fitCloseReason(reason: CloseReason): CloseReason {
  const message = fitCloseMessage(reason.message);
  return message === reason.message ? reason : new CloseReason(reason.code, message);
}
