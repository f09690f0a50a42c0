// A minimal Phoenix/Realtime endpoint (protocol vsn 2.0.0, JSON arrays) for
// unit-testing the supabase-js adapter: answers joins and heartbeats, records
// what clients sent, and can push broadcasts or drop connections.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

type Frame = [string | null, string | null, string, string, Record<string, unknown>];

export interface JoinRecord {
  topic: string;
  payload: Record<string, unknown>;
}

export class MiniRealtime {
  readonly joins: JoinRecord[] = [];
  readonly connections: WebSocket[] = [];
  private readonly joinRefs = new Map<WebSocket, Map<string, string>>();

  private constructor(private readonly server: WebSocketServer) {
    server.on('connection', (socket) => {
      this.connections.push(socket);
      this.joinRefs.set(socket, new Map());
      socket.on('message', (data, isBinary) => {
        if (isBinary) return;
        this.receive(socket, JSON.parse(String(data)) as Frame);
      });
    });
  }

  static async start(): Promise<MiniRealtime> {
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(server, 'listening');
    return new MiniRealtime(server);
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private receive(socket: WebSocket, [joinRef, ref, topic, event, payload]: Frame): void {
    const reply = (response: Record<string, unknown>): void => {
      socket.send(JSON.stringify([joinRef, ref, topic, 'phx_reply', { status: 'ok', response }]));
    };
    if (topic === 'phoenix' && event === 'heartbeat') return reply({});
    if (event === 'phx_join') {
      this.joins.push({ topic, payload });
      this.joinRefs.get(socket)?.set(topic, joinRef ?? '');
      return reply({ postgres_changes: [] });
    }
    if (event === 'phx_leave') return reply({});
  }

  /** Sends a broadcast to every socket joined to `topic` (e.g. "realtime:jobs:u1"). */
  broadcast(topic: string, event: string, payload: unknown): void {
    for (const socket of this.connections) {
      if (socket.readyState !== socket.OPEN || !this.joinRefs.get(socket)?.has(topic)) continue;
      socket.send(JSON.stringify([null, null, topic, 'broadcast', { type: 'broadcast', event, payload }]));
    }
  }

  /** Drops every connection, as a network failure would. */
  dropAll(): void {
    for (const socket of this.connections) socket.terminate();
    this.connections.length = 0;
  }

  async close(): Promise<void> {
    this.dropAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
