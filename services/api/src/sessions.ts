import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Console sessions, in memory: a random cookie value (only its hash is kept) bound to a key id, a
 * CSRF token, an idle timeout (sliding) and an absolute lifetime. LIMITATION (README): sessions live
 * in this process only: a restart logs everyone out, and N replicas need sticky sessions.
 */
export interface Session {
  keyId: string;
  csrf: string;
  createdAt: number;
  lastSeen: number;
}

export interface SessionStore {
  create(keyId: string): { token: string; session: Session; expiresAt: number };
  /** The live session of a cookie value, touched (sliding expiry); undefined when expired/unknown. */
  get(token: string | undefined): { session: Session; expiresAt: number } | undefined;
  destroy(token: string | undefined): void;
  /** Drops every session of a key (revocation). */
  destroyKey(keyId: string): void;
  size(): number;
}

const digest = (t: string) => createHash('sha256').update(t).digest('hex');

export function createSessionStore(opts: {
  idleMs: number;
  maxMs: number;
  maxSessions?: number;
  now?: () => number;
}): SessionStore {
  const now = opts.now ?? Date.now;
  const max = opts.maxSessions ?? 10_000;
  const sessions = new Map<string, Session>();
  const expiry = (s: Session) => Math.min(s.lastSeen + opts.idleMs, s.createdAt + opts.maxMs);
  const sweep = (t: number) => {
    for (const [k, s] of sessions) if (expiry(s) <= t) sessions.delete(k);
  };
  return {
    create(keyId) {
      const t = now();
      if (sessions.size >= max) sweep(t);
      // Still full: the oldest session goes (Map order is insertion order).
      if (sessions.size >= max) sessions.delete(sessions.keys().next().value!);
      const token = randomBytes(32).toString('base64url');
      const session: Session = {
        keyId,
        csrf: randomBytes(24).toString('base64url'),
        createdAt: t,
        lastSeen: t,
      };
      sessions.set(digest(token), session);
      return { token, session, expiresAt: expiry(session) };
    },
    get(token) {
      if (!token || token.length > 128) return undefined;
      const k = digest(token);
      const s = sessions.get(k);
      if (!s) return undefined;
      const t = now();
      if (expiry(s) <= t) {
        sessions.delete(k);
        return undefined;
      }
      s.lastSeen = t;
      return { session: s, expiresAt: expiry(s) };
    },
    destroy(token) {
      if (token) sessions.delete(digest(token));
    },
    destroyKey(keyId) {
      for (const [k, s] of sessions) if (s.keyId === keyId) sessions.delete(k);
    },
    size: () => sessions.size,
  };
}

/** Constant-time comparison of a presented CSRF token. */
export function csrfMatches(expected: string, presented: unknown): boolean {
  if (typeof presented !== 'string' || presented.length !== expected.length) return false;
  return timingSafeEqual(Buffer.from(presented), Buffer.from(expected));
}
