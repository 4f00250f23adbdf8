/** The page's side of the protocol: requests settled by the host's replies, other messages to a handler. */
import type { Replies, Request, ToHost, ToPage, UiState } from '../../extension/protocol';

interface VsCodeApi {
  postMessage(message: ToHost): void;
  getState(): UiState | undefined;
  setState(state: UiState): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

export const vscode = acquireVsCodeApi();

let nextId = 1;
const pending = new Map<number, { resolve: (body: unknown) => void; reject: (err: Error) => void }>();

export function request<R extends Request>(r: R): Promise<Replies[R['kind']]> {
  const requestId = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(requestId, { resolve: resolve as (body: unknown) => void, reject });
    vscode.postMessage({ type: 'request', requestId, request: r });
  });
}

export function listen(handler: (message: Exclude<ToPage, { type: 'reply' }>) => void): void {
  window.addEventListener('message', (event: MessageEvent<ToPage>) => {
    const m = event.data;
    if (m.type !== 'reply') return handler(m);
    const waiting = pending.get(m.requestId);
    if (!waiting) return;
    pending.delete(m.requestId);
    if (m.ok) waiting.resolve(m.body);
    else waiting.reject(new Error(m.error));
  });
}
