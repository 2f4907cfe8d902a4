/** What the API routes need from the rest of the process; built once in main.ts. */
import type { Config } from '../config/index.js';
import type { AccessKeyService } from '../domain/access-keys.js';
import type { Clock } from '../domain/clock.js';
import type { ConsoleService } from '../domain/consoles.js';
import type { IamService } from '../domain/iam.js';
import type { AuditService } from '../domain/audit.js';
import type { Store } from '../store/types.js';
import type { WebAssets } from '../web/assets.js';
import type { RateLimitStore } from './ratelimit.js';

export interface ApiContext {
  config: Readonly<Config>;
  store: Store;
  iam: IamService;
  consoles: ConsoleService;
  audit: AuditService;
  web: WebAssets;
  /** AK/SK keys and signature authentication; without it AK/SK requests are refused. */
  accessKeys?: AccessKeyService;
  /** Counters for API and login throttling; without it nothing is throttled. */
  rateLimits?: RateLimitStore;
  /** Time for throttling windows (the domain services take their own). */
  clock?: Clock;
}
