/**
 * The five frame kinds a WebSocket peer can see, as Ktor's `FrameType` enum:
 * each knows its RFC 6455 opcode and whether it is a control frame.
 */
export class FrameType {
  static readonly TEXT = new FrameType('TEXT', 0x1, false);
  static readonly BINARY = new FrameType('BINARY', 0x2, false);
  static readonly CLOSE = new FrameType('CLOSE', 0x8, true);
  static readonly PING = new FrameType('PING', 0x9, true);
  static readonly PONG = new FrameType('PONG', 0xa, true);

  private static readonly byOpcode: ReadonlyArray<FrameType | undefined> = (() => {
    const table: Array<FrameType | undefined> = new Array(16).fill(undefined);
    for (const type of FrameType.values()) table[type.opcode] = type;
    return table;
  })();

  private constructor(
    readonly name: string,
    readonly opcode: number,
    readonly controlFrame: boolean,
  ) {}

  static values(): FrameType[] {
    return [FrameType.TEXT, FrameType.BINARY, FrameType.CLOSE, FrameType.PING, FrameType.PONG];
  }

  /** The type for an opcode, or undefined for continuation (0) and reserved opcodes. */
  static get(opcode: number): FrameType | undefined {
    return FrameType.byOpcode[opcode];
  }

  toString(): string {
    return this.name;
  }
}
