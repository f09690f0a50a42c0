// A live view of one job: callbacks, an async iterator, result() and cancel().
import { JobCancelledError, JobClientError, JobFailedError } from './errors';
import type { JobSnapshot } from './merge';
import { isTerminal, type JobEvent, type JobKind, type ResultOf } from './types';

export type JobUpdate =
  | { type: 'state'; snapshot: JobSnapshot }
  | { type: 'event'; event: JobEvent; snapshot: JobSnapshot };

/** What a handle needs from its client. */
export interface HandleHost {
  snapshot(id: string): JobSnapshot;
  cancel(id: string): Promise<JobSnapshot>;
  /** Re-reads the full row (used when a broadcast left the result out). */
  refresh(id: string): Promise<JobSnapshot>;
}

export class JobHandle<K extends JobKind = JobKind> implements AsyncIterable<JobUpdate> {
  private readonly listeners = new Set<(update: JobUpdate) => void>();
  private resultPromise: Promise<ResultOf<K>> | null = null;
  private settle: { resolve: (value: ResultOf<K>) => void; reject: (error: Error) => void } | null = null;
  private fetchingResult = false;

  constructor(
    readonly id: string,
    readonly kind: K,
    private readonly host: HandleHost,
  ) {}

  get snapshot(): JobSnapshot {
    return this.host.snapshot(this.id);
  }

  /** Answered from the result cache (known once a full row was read, e.g. on submit). */
  get cached(): boolean {
    return this.snapshot.row?.cached === true;
  }

  get done(): boolean {
    return isTerminal(this.snapshot.status);
  }

  /** Calls `listener` on every change; returns an unsubscribe function. */
  onUpdate(listener: (update: JobUpdate) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /**
   * Resolves with the job's result once it succeeded; rejects with
   * JobFailedError / JobCancelledError when it ends otherwise.
   */
  result(): Promise<ResultOf<K>> {
    if (!this.resultPromise) {
      this.resultPromise = new Promise<ResultOf<K>>((resolve, reject) => {
        this.settle = { resolve, reject };
      });
      this.trySettle();
    }
    return this.resultPromise;
  }

  /** Asks the server to cancel; resolves with the state the RPC returned. */
  cancel(): Promise<JobSnapshot> {
    if (this.done) return Promise.resolve(this.snapshot);
    return this.host.cancel(this.id);
  }

  /**
   * Iterates over updates, starting with the current state, and ends after
   * the update that brings the job to a terminal status.
   */
  updates(): AsyncIterableIterator<JobUpdate> {
    const queue: JobUpdate[] = [{ type: 'state', snapshot: this.snapshot }];
    let wake: (() => void) | null = null;
    let finished = false;
    const unsubscribe = this.onUpdate((update) => {
      queue.push(update);
      wake?.();
      wake = null;
    });
    const finish = (): IteratorResult<JobUpdate> => {
      finished = true;
      unsubscribe();
      queue.length = 0;
      return { done: true, value: undefined };
    };
    const iterator: AsyncIterableIterator<JobUpdate> = {
      next: async () => {
        for (;;) {
          if (finished) return { done: true, value: undefined };
          const update = queue.shift();
          if (update) {
            if (isTerminal(update.snapshot.status)) {
              // Deliver this last update, then stop on the following call.
              finished = true;
              unsubscribe();
            }
            return { done: false, value: update };
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
        }
      },
      return: async () => finish(),
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  [Symbol.asyncIterator](): AsyncIterator<JobUpdate> {
    return this.updates();
  }

  /** @internal Called by the client after every applied change. */
  _notify(update: JobUpdate): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(update);
      } catch (error) {
        // A failing UI callback must not stop other listeners or the client.
        console.error('job update listener failed', error);
      }
    }
    this.trySettle();
  }

  private trySettle(): void {
    const settle = this.settle;
    if (!settle) return;
    const s = this.snapshot;
    if (s.status === 'failed') {
      this.settle = null;
      settle.reject(new JobFailedError(this.id, s.error));
    } else if (s.status === 'cancelled') {
      this.settle = null;
      settle.reject(new JobCancelledError(this.id));
    } else if (s.status === 'succeeded') {
      if (s.hasResult) {
        this.settle = null;
        // The payload/result types come from the worker's schemas; the server
        // is trusted to honour them.
        settle.resolve(s.result as ResultOf<K>);
      } else if (!this.fetchingResult) {
        // The broadcast left a large result out: read it from the row.
        this.fetchingResult = true;
        this.host.refresh(this.id).then(
          (fresh) => {
            this.fetchingResult = false;
            if (!this.settle) return;
            if (fresh.hasResult) {
              this.settle = null;
              settle.resolve(fresh.result as ResultOf<K>);
            } else {
              this.settle = null;
              settle.reject(new JobClientError(`Job ${this.id} succeeded but its result could not be read`));
            }
          },
          (error: unknown) => {
            this.fetchingResult = false;
            this.settle = null;
            settle.reject(error instanceof Error ? error : new Error(String(error)));
          },
        );
      }
    }
  }
}
