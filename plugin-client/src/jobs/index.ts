// Public API of the job client library.
export { JobClient, type ConnectionState, type JobClientOptions, type SubmitOptions } from './client';
export { JobHandle, type JobUpdate } from './handle';
export type { JobSnapshot, ProgressEntry, LogEntry } from './merge';
export {
  JobClientError,
  RateLimitError,
  BudgetExceededError,
  ValidationError,
  PermissionError,
  NetworkError,
  JobFailedError,
  JobCancelledError,
  PayloadTooLargeError,
  JobNotFoundError,
  ConflictError,
  mapPostgrestError,
} from './errors';
export { createSupabaseJobsBackend, type JobsBackend, type ChannelStatus, type ChannelHandlers } from './backend';
export {
  isTerminal,
  JOB_STATUSES,
  type JobStatus,
  type JobRow,
  type JobEvent,
  type JobErrorInfo,
  type JobProgress,
  type JobKind,
  type JobKinds,
  type PayloadOf,
  type ResultOf,
} from './types';
export { JOB_KINDS } from './generated/types';
export { formatUsd, type JobCost, type Spend } from './spend';
