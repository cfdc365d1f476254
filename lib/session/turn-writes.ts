/**
 * Writes grouped per turn of the event loop: a connection that writes more than once in one turn (a
 * burst of published messages, the answers to pipelined frames) corks its socket, and every socket
 * corked in the turn is let go at its end by one shared setImmediate: one writev each, instead of a
 * system call per frame. The first write of a turn still leaves at once.
 */
export interface HeldWriter {
  releaseWrites(): void;
}

let turn = 0;
let turnEnding = false;
let held: HeldWriter[] = [];

function endTurn(): void {
  turn++;
  turnEnding = false;
  const writers = held;
  held = [];
  for (const writer of writers) writer.releaseWrites();
}

/** This turn's number; the first call in a turn arranges for the turn's end. */
export function currentTurn(): number {
  if (!turnEnding) {
    turnEnding = true;
    setImmediate(endTurn);
  }
  return turn;
}

/** `writer.releaseWrites()` runs at the end of this turn. */
export function holdUntilTurnEnds(writer: HeldWriter): void {
  currentTurn();
  held.push(writer);
}
