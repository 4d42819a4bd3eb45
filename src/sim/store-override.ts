/**
 * A Store that behaves like another except for the methods given: how the simulator's bug
 * injections (src/sim/bugs.ts) wrap a node's store handle. Every other method (including ones the
 * Store port gains later) goes to the wrapped store.
 */
import type { Store } from '../ports/store.js';

export function overrideStore(store: Store, overrides: Partial<Store>): Store {
  return new Proxy(store, {
    get(target, prop) {
      if (Object.hasOwn(overrides, prop)) return overrides[prop as keyof Store];
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
