/** What the API routes need from the rest of the process; built once in main.ts. */
import type { Config } from '../config/index.js';
import type { ConsoleService } from '../domain/consoles.js';
import type { IamService } from '../domain/iam.js';
import type { AuditService } from '../domain/audit.js';
import type { Store } from '../store/types.js';
import type { WebAssets } from '../web/assets.js';

export interface ApiContext {
  config: Readonly<Config>;
  store: Store;
  iam: IamService;
  consoles: ConsoleService;
  audit: AuditService;
  web: WebAssets;
}
