// One SignalR connection to /hubs/live for the whole page. It reconnects by itself (also after the Api restarts),
// shows its state in the header, and lets pages listen to events and re-subscribe to groups after a reconnect.
import { HubConnectionBuilder, HubConnectionState, LogLevel } from '@microsoft/signalr';
import { getKey } from './api.js';

const listeners = new Map(); // event name -> Set of handlers
const reconnectedHandlers = new Set();
const sensorSubscriptions = new Map(); // sensorId -> count
let connection = null;
let statusElement = null;
let stopped = false;

const retryPolicy = {
  // Never gives up: 0 s, 1 s, 2 s, then every 3 s.
  nextRetryDelayInMilliseconds: (context) => [0, 1000, 2000][context.previousRetryCount] ?? 3000,
};

function setStatus(state, text) {
  if (!statusElement) return;
  statusElement.dataset.state = state;
  statusElement.textContent = text;
}

export function liveState() {
  return statusElement?.dataset.state ?? 'idle';
}

export function startLive(element) {
  statusElement = element;
  if (connection) return;
  stopped = false;
  connection = new HubConnectionBuilder()
    .withUrl('/hubs/live', { accessTokenFactory: () => getKey() ?? '' })
    .withAutomaticReconnect(retryPolicy)
    .configureLogging(LogLevel.None)
    .build();
  for (const name of ['alert', 'aggregate']) {
    connection.on(name, (payload) => {
      for (const handler of listeners.get(name) ?? []) handler(payload);
    });
  }
  connection.onreconnecting(() => setStatus('reconnecting', 'Reconnecting…'));
  connection.onreconnected(async () => {
    setStatus('connected', 'Live');
    await resubscribe();
    for (const handler of reconnectedHandlers) handler();
  });
  connection.onclose(() => {
    if (!stopped) startLoop(true);
  });
  startLoop(false);
}

async function startLoop(afterLoss) {
  setStatus(afterLoss ? 'reconnecting' : 'connecting', afterLoss ? 'Reconnecting…' : 'Connecting…');
  let attempt = 0;
  while (!stopped && connection && connection.state === HubConnectionState.Disconnected) {
    try {
      await connection.start();
      setStatus('connected', 'Live');
      await resubscribe();
      if (afterLoss || attempt > 0) for (const handler of reconnectedHandlers) handler();
      return;
    } catch {
      attempt++;
      setStatus('reconnecting', 'Reconnecting…');
      await new Promise((resolve) => setTimeout(resolve, Math.min(3000, 500 * attempt)));
    }
  }
}

export async function stopLive() {
  stopped = true;
  const current = connection;
  connection = null;
  setStatus('idle', '');
  if (current) await current.stop();
}

/** Listens to a hub event; returns a function that stops listening. */
export function onLive(name, handler) {
  if (!listeners.has(name)) listeners.set(name, new Set());
  listeners.get(name).add(handler);
  return () => listeners.get(name).delete(handler);
}

/** Called after the connection came back, so that a page can reload what it may have missed. */
export function onReconnected(handler) {
  reconnectedHandlers.add(handler);
  return () => reconnectedHandlers.delete(handler);
}

async function resubscribe() {
  for (const sensorId of sensorSubscriptions.keys()) {
    try {
      await connection.invoke('SubscribeSensor', sensorId);
    } catch {
      // The next reconnect subscribes again.
    }
  }
}

/** Receives the sensor's closed minutes ("aggregate" events) until the returned function is called. */
export function subscribeSensor(sensorId) {
  sensorSubscriptions.set(sensorId, (sensorSubscriptions.get(sensorId) ?? 0) + 1);
  if (connection?.state === HubConnectionState.Connected) connection.invoke('SubscribeSensor', sensorId).catch(() => {});
  return () => {
    const left = (sensorSubscriptions.get(sensorId) ?? 1) - 1;
    if (left > 0) {
      sensorSubscriptions.set(sensorId, left);
      return;
    }
    sensorSubscriptions.delete(sensorId);
    if (connection?.state === HubConnectionState.Connected) connection.invoke('UnsubscribeSensor', sensorId).catch(() => {});
  };
}

/** Event ids already applied: a replay after a crash may send an event again with the same id. */
export class SeenIds {
  constructor(capacity = 5000) {
    this.capacity = capacity;
    this.ids = new Set();
  }

  /** True the first time an id is seen. */
  add(id) {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.capacity) this.ids.delete(this.ids.values().next().value);
    return true;
  }
}
