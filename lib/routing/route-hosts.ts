/**
 * The prototypes that declare `@WebSocketRoute` methods, recorded as the
 * decorator runs, so that startup tells a provider with routes from the
 * rest by one lookup per provider instead of reading every method's metadata.
 */
const routeHosts = new WeakSet<object>();

export function markRouteHost(prototype: object): void {
  routeHosts.add(prototype);
}

/** Whether the class of `prototype`, or one it extends, declares a route. */
export function declaresRoutes(prototype: object): boolean {
  let current: object | null = prototype;
  while (current !== null && current !== Object.prototype) {
    if (routeHosts.has(current)) return true;
    current = Object.getPrototypeOf(current) as object | null;
  }
  return false;
}
