/**
 * Bearer tokens: a random secret shown once when created, stored only as its SHA-256 (a leaked
 * Redis dump gives no usable token; the secret has 256 bits, so no salt or slow hash is needed).
 *
 * Keys:
 *   nci:token:<sha256>   hash: name, role, created_at, max_concurrent, max_per_hour
 *   nci:tokens           hash: name -> sha256 (names are unique; listing and revoking go by name)
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Redis } from 'ioredis';

export const ROLES = ['read', 'submit', 'admin'] as const;
export type Role = (typeof ROLES)[number];
/** Each role can do what the roles before it can. */
export const roleAtLeast = (have: Role, need: Role): boolean => ROLES.indexOf(have) >= ROLES.indexOf(need);

export interface TokenLimits {
  /** Jobs queued or running at once; null: the server's default. */
  max_concurrent: number | null;
  /** Jobs accepted per rolling hour; null: the server's default. */
  max_per_hour: number | null;
}

export interface TokenInfo extends TokenLimits {
  name: string;
  role: Role;
  created_at: string;
}

/** The principal of a request: a stored token, or the operator's NOMMU_CI_ADMIN_TOKEN. */
export interface Principal {
  name: string;
  role: Role;
  limits: TokenLimits;
}

export const ADMIN_PRINCIPAL_NAME = 'admin';
const KEY = 'nci:token:';
const NAMES = 'nci:tokens';

const hash = (token: string) => createHash('sha256').update(token).digest('hex');

export class TokenStore {
  constructor(private readonly redis: Redis) {}

  /** Creates a token; null when the name is taken. The secret is returned here and never again. */
  async create(name: string, role: Role, limits: TokenLimits): Promise<{ token: string; info: TokenInfo } | null> {
    const token = `nci_${randomBytes(32).toString('base64url')}`;
    const h = hash(token);
    if ((await this.redis.hsetnx(NAMES, name, h)) === 0) return null;
    const info: TokenInfo = { name, role, created_at: new Date().toISOString(), ...limits };
    await this.redis.hset(KEY + h, { info: JSON.stringify(info) });
    return { token, info };
  }

  async verify(token: string): Promise<TokenInfo | null> {
    const s = await this.redis.hget(KEY + hash(token), 'info');
    return s ? (JSON.parse(s) as TokenInfo) : null;
  }

  async list(): Promise<TokenInfo[]> {
    const hashes = Object.values(await this.redis.hgetall(NAMES));
    if (hashes.length === 0) return [];
    const m = this.redis.multi();
    for (const h of hashes) m.hget(KEY + h, 'info');
    const infos = ((await m.exec()) ?? []).map(([, v]) => (typeof v === 'string' ? (JSON.parse(v) as TokenInfo) : null));
    return infos.filter((i): i is TokenInfo => i !== null).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** False when there is no token of that name. */
  async revoke(name: string): Promise<boolean> {
    const h = await this.redis.hget(NAMES, name);
    if (!h) return false;
    await this.redis.multi().del(KEY + h).hdel(NAMES, name).exec();
    return true;
  }

  async any(): Promise<boolean> {
    return (await this.redis.hlen(NAMES)) > 0;
  }
}

/** Compares the presented token with the operator's admin token in constant time. */
export function isAdminToken(presented: string, admin: string | undefined): boolean {
  if (!admin) return false;
  const a = Buffer.from(hash(presented), 'hex');
  const b = Buffer.from(hash(admin), 'hex');
  return timingSafeEqual(a, b);
}
