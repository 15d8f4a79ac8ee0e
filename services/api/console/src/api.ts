import type { Session } from './types.js';

/** An error answer of the API (`{ error: { code, message } }`), or a network failure (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let session: Session | null = null;
let onUnauthenticated: () => void = () => {};

export const getSession = (): Session | null => session;
export function setSession(s: Session | null): void {
  session = s;
  // NOTE: the CSRF token lives in memory only; a reload asks GET /api/v1/session, which answers it
  // again, so nothing secret is kept in storage.
}
export function onSessionLost(fn: () => void): void {
  onUnauthenticated = fn;
}
export const hasScope = (scope: string): boolean =>
  !!session && (session.scopes.includes(scope) || session.scopes.includes('admin'));

type Params = URLSearchParams | Record<string, string | string[] | undefined>;

export function toQuery(params?: Params): string {
  if (!params) return '';
  const p = new URLSearchParams();
  if (params instanceof URLSearchParams) params.forEach((v, k) => p.append(k, v));
  else
    for (const [k, v] of Object.entries(params))
      if (v !== undefined) for (const x of Array.isArray(v) ? v : [v]) if (x !== '') p.append(k, x);
  const s = p.toString();
  return s ? `?${s}` : '';
}

async function request<T>(
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  opts: { params?: Params; body?: unknown; signal?: AbortSignal; quiet401?: boolean } = {},
): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && session?.csrf_token) headers['x-csrf-token'] = session.csrf_token;
  let res: Response;
  try {
    res = await fetch(`/api/v1${path}${toQuery(opts.params)}`, {
      method,
      headers,
      credentials: 'same-origin',
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: opts.signal,
    });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(0, 'NETWORK', 'The API could not be reached. Check the connection and try again.');
  }
  const text = await res.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const e = (data as { error?: { code?: string; message?: string } } | null)?.error;
    const err = new ApiError(res.status, e?.code ?? `HTTP_${res.status}`, e?.message ?? res.statusText);
    if (res.status === 401 && !opts.quiet401) {
      session = null;
      onUnauthenticated();
    }
    throw err;
  }
  return data as T;
}

export const api = {
  get: <T>(path: string, params?: Params, signal?: AbortSignal) =>
    request<T>('GET', path, { params, signal }),
  post: <T>(path: string, body: unknown, signal?: AbortSignal) => request<T>('POST', path, { body, signal }),
  login: (key: string) => request<Session>('POST', '/session', { body: { key }, quiet401: true }),
  current: () => request<Session>('GET', '/session', { quiet401: true }),
  logout: () => request<unknown>('DELETE', '/session', { quiet401: true }),
};

/** The download URL for an export (a plain link: the session cookie authenticates a GET). */
export const exportUrl = (format: 'ndjson' | 'csv', params: URLSearchParams): string => {
  const p = new URLSearchParams(params);
  p.delete('cursor');
  p.set('format', format);
  return `/api/v1/events/export?${p.toString()}`;
};
