// Request/response correlation over a one-way message port (UI → main and back).
// Each request gets a unique id and a timeout, so a lost or late answer can
// never resolve the wrong caller or hang it forever.
import { parseMainToUi, type MainEvent, type RequestMap, type RequestType } from './protocol';

export interface MessagePortLike {
  post(message: unknown): void;
  /** Subscribes to incoming messages; returns an unsubscribe function. */
  listen(handler: (message: unknown) => void): () => void;
}

export class RelayTimeoutError extends Error {
  override name = 'RelayTimeoutError';
  constructor(
    readonly requestType: string,
    readonly timeoutMs: number,
  ) {
    super(`The plugin main thread did not answer ${requestType} within ${timeoutMs} ms`);
  }
}

export class RelayRemoteError extends Error {
  override name = 'RelayRemoteError';
  constructor(
    readonly requestType: string,
    message: string,
  ) {
    super(message);
  }
}

export interface RequestClientOptions {
  timeoutMs?: number;
  newId?: () => string;
}

interface Pending {
  type: string;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

let fallbackCounter = 0;
function defaultId(): string {
  // Typed structurally: this module also compiles for the main thread (no DOM lib).
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  fallbackCounter += 1;
  return `req-${Date.now().toString(36)}-${fallbackCounter}`;
}

export class RequestClient {
  private readonly pending = new Map<string, Pending>();
  private readonly eventHandlers = new Set<(event: MainEvent) => void>();
  private readonly unlisten: () => void;
  private readonly timeoutMs: number;
  private readonly newId: () => string;

  constructor(
    private readonly port: MessagePortLike,
    options: RequestClientOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.newId = options.newId ?? defaultId;
    this.unlisten = port.listen((message) => this.receive(message));
  }

  request<K extends RequestType>(
    type: K,
    params: RequestMap[K]['params'],
    options: { timeoutMs?: number } = {},
  ): Promise<RequestMap[K]['result']> {
    const requestId = this.newId();
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    return new Promise<RequestMap[K]['result']>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new RelayTimeoutError(type, timeoutMs));
      }, timeoutMs);
      this.pending.set(requestId, {
        type,
        // The main thread is trusted to answer with RequestMap[K]['result'] (the
        // same protocol module defines both sides).
        resolve: resolve as (value: unknown) => void,
        reject,
        timer,
      });
      try {
        this.port.post({ type, requestId, params });
      } catch (error) {
        clearTimeout(timer);
        this.pending.delete(requestId);
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  onEvent(handler: (event: MainEvent) => void): () => void {
    this.eventHandlers.add(handler);
    return () => this.eventHandlers.delete(handler);
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  dispose(): void {
    this.unlisten();
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new Error(`request ${p.type} abandoned: client disposed`));
      this.pending.delete(id);
    }
  }

  private receive(raw: unknown): void {
    const message = parseMainToUi(raw);
    if (!message) return;
    if (message.type === 'event') {
      for (const handler of this.eventHandlers) handler(message);
      return;
    }
    const pending = this.pending.get(message.requestId);
    // Unknown ids are answers to requests that already timed out: drop them.
    if (!pending) return;
    this.pending.delete(message.requestId);
    clearTimeout(pending.timer);
    if (message.ok) pending.resolve(message.result);
    else pending.reject(new RelayRemoteError(pending.type, message.error));
  }
}
