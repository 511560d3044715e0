import { isProtocolError, type PassageError } from '../../shared/errors.ts';

/** Runs `f`; a throw must be a protocol error (anything else is rethrown, so a fuzz property fails). */
export function onlyProtocolErrors<T>(f: () => T): T | PassageError {
  try {
    return f();
  } catch (e) {
    if (isProtocolError(e)) return e;
    throw e;
  }
}
