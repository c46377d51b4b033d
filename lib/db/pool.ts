/**
 * A worker's connections to PostgreSQL: a small pool whose connections are
 * borrowed only for a statement or a transaction (to claim, to look up, to
 * write) and closed again after a short idle time, so that a worker reading
 * storage or rendering holds none. A fleet of hundreds of workers then needs
 * about as many connections as are writing at one moment, not one per
 * worker slot.
 *
 * Connection failures become ExternalServiceError (transient); a connection
 * that fails mid-use is destroyed, not returned to the pool; an error event
 * on a borrowed connection (the server restarting under it) is logged, not
 * left to end the process.
 */
import pg from "pg";

import { isTransient } from "../errors.js";
import type { Logger } from "../logger.js";
import { describeConnectError, withTransaction } from "./connect.js";

export interface DbOptions {
  /** Shown in pg_stat_activity. */
  applicationName: string;
  /** Connections at most (a worker's concurrency). */
  max: number;
  /** A connection unused this long is closed. */
  idleMs?: number;
  connectTimeoutMs?: number;
  logger?: Logger;
}

export class Db {
  private readonly pool: pg.Pool;
  private peakOpen = 0;

  constructor(
    private readonly url: string,
    options: DbOptions,
  ) {
    this.pool = new pg.Pool({
      connectionString: url,
      max: options.max,
      application_name: options.applicationName,
      idleTimeoutMillis: options.idleMs ?? 2000,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    });
    const quiet = (error: Error) =>
      options.logger?.debug("database connection lost", {
        error: error.message,
      });
    // An idle connection's error reaches the pool; a borrowed one's reaches
    // the client, where nobody listens unless we do.
    this.pool.on("error", quiet);
    this.pool.on("connect", (client) => client.on("error", quiet));
  }

  /** Borrows a connection for `fn`. */
  async withClient<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw describeConnectError(error, this.url);
    }
    this.peakOpen = Math.max(this.peakOpen, this.pool.totalCount);
    let failure: unknown;
    try {
      return await fn(client);
    } catch (error) {
      failure = error;
      throw error;
    } finally {
      // A connection that failed mid-use may be broken: do not lend it again.
      client.release(
        failure !== undefined && isTransient(failure) ? true : undefined,
      );
    }
  }

  /** Borrows a connection for one transaction. */
  transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.withClient((client) => withTransaction(client, fn));
  }

  /** Connections open now (borrowed or idle). */
  get open(): number {
    return this.pool.totalCount;
  }

  /** Connections open at once, at most, so far. */
  get peak(): number {
    return this.peakOpen;
  }

  end(): Promise<void> {
    return this.pool.end().catch(() => undefined);
  }
}
