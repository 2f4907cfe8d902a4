/** createStore(config): picks the adapter from the configuration. */
import path from 'node:path';
import type { Config } from '../config/index.js';
import { openSqliteStore } from './sqlite/index.js';
import type { Store } from './types.js';

export async function createStore(config: Pick<Config, 'databaseUrl' | 'dataDir'>): Promise<Store> {
  if (config.databaseUrl) {
    throw new Error('database_url: the PostgreSQL adapter is not available in this build yet; unset it to use the embedded SQLite store');
  }
  return openSqliteStore(path.join(config.dataDir, 'porthole.db'));
}
