/** How many times each route method ran: `hit` inside the method, `runs` in the test, `clear` before each test. */
export function runCounter() {
  const ran = new Map<string, number>();
  return {
    hit: (name: string): void => void ran.set(name, (ran.get(name) ?? 0) + 1),
    runs: (name: string): number => ran.get(name) ?? 0,
    clear: (): void => ran.clear(),
  };
}
