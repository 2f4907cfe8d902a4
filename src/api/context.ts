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
import type { AdminAccess, DirectoryService } from '../domain/directory.js';
import type { InventoryService } from '../domain/inventory.js';
import type { SecretBox } from '../domain/secrets.js';
import type { SessionControl } from '../domain/session-control.js';
import type { AssistanceService } from '../domain/assistance.js';
import type { BackendPolicy } from '../domain/backend-policy.js';

/** What the admin API (routes/admin-*.ts) needs; built in gateway.ts. */
export interface AdminServices {
  access: AdminAccess;
  directory: DirectoryService;
  inventory: InventoryService;
  secrets: SecretBox;
  sessions: SessionControl;
  nodeId: string;
  /** Bytes relayed so far by this node's live sessions, by session id. */
  liveBytes(): Map<string, { toClient: number; toBackend: number }>;
  /** After a fleet apply changed or deleted machines: ends their live sessions by policy. */
  resourcesChanged(resourceIds: string[]): Promise<void>;
  /** After users were deleted, disabled or demoted: revokes their console links and ends their live consoles on every node. */
  usersChanged(userIds: readonly string[]): Promise<void>;
  /** Where console endpoints may point (backends.allowed_networks): checked on fleet files too. */
  backends: BackendPolicy;
}

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
  /** The admin API (/admin/v1/… beyond the audit trail); absent = not served. */
  admin?: AdminServices;
  /** Remote assistance (Workspace remote-assistance API, join page, console-page channel); absent = not served. */
  assistance?: AssistanceService;
}
