/** The exit path's one error: why a destination could not be reached, and the RESET it becomes. */
import { ResetCode } from '../../shared/remux/frame.ts';

/** Why a dial failed; also the metrics label. */
export type DialFailure = 'resolve' | 'policy' | 'unreachable' | 'timeout';

const CODE_FOR: Record<DialFailure, number> = {
  resolve: ResetCode.NAME_NOT_RESOLVED,
  policy: ResetCode.POLICY,
  unreachable: ResetCode.UNREACHABLE,
  timeout: ResetCode.TIMEOUT,
};

export class DialError extends Error {
  /** The RESET code the stream is answered with (PROTOCOL.md §2). */
  readonly resetCode: number;

  constructor(
    message: string,
    readonly reason: DialFailure,
  ) {
    super(message);
    this.name = 'DialError';
    this.resetCode = CODE_FOR[reason];
  }
}
