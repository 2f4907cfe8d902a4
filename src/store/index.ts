/**
 * createStore(config): picks the adapter from the configuration — PostgreSQL when `database_url` is
 * a postgres:// URL (scale-out: every node points at the same database), otherwise the embedded
 * SQLite file in `data_dir`.
 */
import path from 'node:path';
import type { Config } from '../config/index.js';
import { openPostgresStore } from './postgres/index.js';
import { openSqliteStore } from './sqlite/index.js';
import type { Store } from './types.js';

export interface CreateStoreOptions {
  /** Connection errors outside any query (PostgreSQL only), e.g. for a log line; ignored by default. */
  onDatabaseError?: (err: Error) => void;
  /** `application_name` of the PostgreSQL connections, e.g. `porthole/<node id>` (default `porthole`). */
  applicationName?: string;
}

export async function createStore(config: Pick<Config, 'databaseUrl' | 'dataDir'>, opts: CreateStoreOptions = {}): Promise<Store> {
  if (config.databaseUrl !== null && /^postgres(ql)?:\/\//.test(config.databaseUrl)) {
    return openPostgresStore(config.databaseUrl, {
      ...(opts.onDatabaseError ? { onError: opts.onDatabaseError } : {}),
      ...(opts.applicationName ? { applicationName: opts.applicationName } : {}),
    });
  }
  if (config.databaseUrl) throw new Error('database_url must be a postgres:// URL (unset it for the embedded SQLite store)');
  return openSqliteStore(path.join(config.dataDir, 'porthole.db'));
}
