import { ProtocolError } from '../../shared/errors.ts';

/** Runs `f`; a throw must be a ProtocolError (anything else is rethrown, so a fuzz property fails). */
export function onlyProtocolErrors<T>(f: () => T): T | ProtocolError {
  try {
    return f();
  } catch (e) {
    if (e instanceof ProtocolError) return e;
    throw e;
  }
}
