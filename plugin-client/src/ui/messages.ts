// Plain-language messages for errors shown in the UI.
import { SignInError } from '../auth/session';
import {
  BudgetExceededError,
  JobCancelledError,
  JobFailedError,
  NetworkError,
  PermissionError,
  RateLimitError,
  ValidationError,
} from '../jobs/errors';
import { formatUsd } from '../jobs/spend';
import { errorMessage } from '../shared/guards';
import { RelayRemoteError, RelayTimeoutError } from '../shared/rpc';

export function describeError(error: unknown): string {
  if (error instanceof RateLimitError) {
    return error.retryAfterSeconds === null
      ? 'Too many jobs right now. Please wait a moment and try again.'
      : `Too many jobs right now. Try again in ${Math.ceil(error.retryAfterSeconds)} s.`;
  }
  if (error instanceof BudgetExceededError) {
    const used =
      error.spentUsd !== null && error.budgetUsd !== null ? ` (${formatUsd(error.spentUsd)} of ${formatUsd(error.budgetUsd)})` : '';
    const resets = error.resetsAt ? ` It resets at ${error.resetsAt}.` : '';
    return `Your monthly AI budget is used up${used}.${resets}`;
  }
  if (error instanceof ValidationError) {
    return error.field ? `Invalid ${error.field}: ${error.message}` : `Invalid request: ${error.message}`;
  }
  if (error instanceof PermissionError) return `Not allowed: ${error.message}`;
  if (error instanceof NetworkError) return 'Cannot reach Supabase. Check the URL in settings and your connection.';
  if (error instanceof JobFailedError) {
    const kind = error.errorType ? ` (${error.errorType})` : '';
    return `The job failed${kind}: ${error.message}`;
  }
  if (error instanceof JobCancelledError) return 'The job was cancelled.';
  if (error instanceof SignInError) return error.message;
  if (error instanceof RelayTimeoutError) return 'The plugin did not respond. Try closing and reopening it.';
  if (error instanceof RelayRemoteError) return `Could not apply the result: ${error.message}`;
  return errorMessage(error);
}
