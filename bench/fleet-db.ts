/**
 * The central database at fleet scale: how many files per second of ingest
 * writes one PostgreSQL server sustains against hundreds of workers, and
 * where it saturates.
 *
 * Simulated workers are async loops in a few child processes (--processes),
 * each with the database access of one ingest slot, fed with rows built once
 * from parsed headers (a tiny synthetic archive read with the real parser and
 * `archiveRows`), so no FITS is read during the measure. Two contenders, on
 * one throwaway stack with PostgreSQL's default durability (fsync and
 * synchronous commit on), each point in a fresh clone of a migrated database:
 *
 * - fitsfleet: `ingestBatch`'s --fast-rebuild sequence with the project's
 *   functions (lib/rebuild/ledger.ts, lib/archive-writer.ts): claim the
 *   batch's ledger rows; then one transaction: lock the rows still owned,
 *   the present-diskfile check, `file` ids, diskfile, header, instrument and
 *   calcachequeue rows, the ledger rows finished; then the held-elsewhere
 *   check; the lease renewed every lease/3 as ingestBatch does. Each worker
 *   has its own `Db` (max 2: one batch in hand, plus one, as WorkerRuntime
 *   sizes it), through pgbouncer in transaction pooling.
 * - baseline, the reference's pattern (FitsStorage commits per file): each
 *   worker holds one direct connection for its life; per file, a claim of
 *   its ledger row, then one transaction: fitsfleet's careful per-file path
 *   (`writeOne` in lib/rebuild/ingest.ts: the file-name lock, the ownership
 *   lock, the present-diskfile look-up, the `file` id, the earlier version
 *   superseded, the file's rows, its ledger row finished).
 *
 * Batches (--batch ledger ids, one id range) are dealt to the workers from
 * lists in the child processes, not from Redis: the queue is not the
 * database's load. A worker holds no connection while it "parses".
 *
 * Unthrottled (the saturation measure) a worker goes straight from one
 * batch to the next. Paced (--pace-ms per file, at the worker counts of
 * --paced) it sleeps that long per file after claiming, as a worker reading
 * and parsing would. A paced worker first waits part of a lease renewal
 * period, and its first batch's sleep is part of a whole one, both spread
 * evenly over the fleet, so that claims, renewals and commits arrive as
 * from a fleet that has been running a while, not all at once; from a
 * renewal period on (the paced warm-up) the commits arrive at the offered
 * rate.
 *
 * The ledger rows (--ledger-rows, written once by the enqueue's statement)
 * are part of the migrated database that every point clones. In every
 * round the contenders take turns at each worker count (the machine's
 * speed drifts): clone, start the workers, --warmup seconds, then the
 * measured window of --seconds-per-point. Over the window:
 * files committed (counted by the workers as their commits return), CPU of
 * postgres (the postmaster and every child), of pgbouncer, of the load
 * generator and of this process (/proc), commits and rows (pg_stat_database),
 * WAL (pg_stat_wal), checkpoints, and pg_stat_activity sampled every 100 ms:
 * the average number of the point's backends on CPU, waiting for a lock, an
 * LWLock, I/O, or idle in a transaction (waiting for their client), and
 * pgbouncer's waiting clients (SHOW POOLS, SHOW STATS).
 *
 * Before the measure, the real worker (`worker ingest --fast-rebuild`, two
 * processes of the built CLI) ingests the tiny archive through the same
 * pgbouncer, to show that transaction pooling keeps everything it relies on
 * (--skip-check to leave it out).
 *
 * The baseline's direct connections need max_connections above the
 * largest worker count: this script raises it on its own stack (ALTER
 * SYSTEM, then a restart), and changes nothing else.
 *
 * Usage: node --import tsx bench/fleet-db.ts [--workers 50,100,200,400,600]
 *   [--seconds-per-point 8] [--rounds 2] [--batch 200]
 *   [--pool-size 8] (a list, such as 4,8,16, makes each a contender)
 *   [--processes 2] [--warmup 4] [--paced 600] [--pace-ms 300]
 *   [--paced-warmup 20] [--paced-seconds 20] [--ledger-rows 400000]
 *   [--templates 1000] [--statements] [--skip-check] [--skip-build]
 *   [--json]
 * --statements loads pg_stat_statements (which costs the server a little)
 * and prints, per point, the statements that took most of the backends'
 * execution time. With --json the progress goes to stderr and one JSON
 * document to stdout.
 */
import { execFileSync, fork } from "node:child_process";
import { randomUUID } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { writeSyntheticArchive } from "../fixtures/synthetic/archive.js";
import { runLocalWorkers } from "../infra/local.js";
import {
  fileIds,
  lockFileName,
  type NewDiskfile,
  presentDiskfiles,
  supersedeDiskfiles,
  withPresentDiskfile,
  writeDiskfiles,
} from "../lib/archive-writer.js";
import {
  type AnyClient,
  connect,
  type PgClient,
  withClient,
  withTransaction,
} from "../lib/db/connect.js";
import { runMigrations } from "../lib/db/migrate.js";
import { Db } from "../lib/db/pool.js";
import { sleep } from "../lib/exec.js";
import { readFitsFile } from "../lib/fits/read.js";
import {
  archiveRows,
  type InstrumentRow,
  type Row,
} from "../lib/gemini/rows.js";
import { packageRoot } from "../lib/paths.js";
import { pgbouncerProgram } from "../lib/programs.js";
import { DEFAULT_BATCH_SIZE } from "../lib/rebuild/defaults.js";
import { enqueue } from "../lib/rebuild/enqueue.js";
import { DEFAULT_LEASE_SECONDS } from "../lib/rebuild/ingest.js";
import {
  type Claim,
  claimRows,
  finishRows,
  heldElsewhere,
  insertLedgerRows,
  type LedgerEntry,
  lockOwnedRows,
  renewLease,
} from "../lib/rebuild/ledger.js";
import { trimName } from "../lib/rebuild/names.js";
import {
  freePort,
  stackDown,
  type StackState,
  stackUp,
  stackUrls,
} from "../lib/stack/index.js";
import {
  pgbouncerPaths,
  pgbouncerPid,
  pgbouncerUrl,
  startPgbouncer,
  stopPgbouncer,
} from "../lib/stack/pgbouncer.js";
import {
  clusterPid,
  startCluster,
  stopCluster,
} from "../lib/stack/postgres.js";
import { openStorage } from "../lib/storage/index.js";

type Contender = "baseline" | "fitsfleet";

/** Parsed-header data of one file, from the synthetic archive. */
interface Template {
  header: Row;
  instrument: InstrumentRow[];
  fileMd5: string;
  fileSize: number;
  dataMd5: string;
  dataSize: number;
}

/**
 * A paced worker's place in the fleet, as fractions: how far into its
 * first batch it is (its first commit comes after that part of a batch's
 * parsing), and when within a renewal period it starts. Spread evenly, not
 * at random, so that the commits in a window are the offered rate and not
 * a sample of it.
 */
interface SimulatedWorker {
  name: string;
  phase: number;
  delay: number;
}

type ToChild =
  | {
      kind: "start";
      contender: Contender;
      url: string;
      workers: SimulatedWorker[];
      /** This process's share of the ledger ids, in queue order, taken `take` at a time. */
      ids: number[];
      take: number;
      paceMs: number;
      templates: string;
    }
  | { kind: "go" }
  | { kind: "stop"; from: number; to: number };

interface WindowCount {
  files: number;
  commits: number;
  /** Write transactions' times (ms), from asking for a connection to the commit's return. */
  latencies: number[];
  errors: string[];
  renewalFailures: number;
}

type FromChild =
  | { kind: "ready" }
  | { kind: "dry"; at: number }
  | ({ kind: "counted" } & WindowCount)
  | { kind: "idle" };

const LEDGER_STORAGE = "bench";

// --- the load generator (a child process) -------------------------------------------

interface Prepared {
  entry: LedgerEntry;
  name: string;
  item: Omit<NewDiskfile, "fileId">;
}

/** The rows of a claimed file: its template's, with the file's own name and data label. */
function prepare(entry: LedgerEntry, templates: Template[]): Prepared {
  const t = templates[entry.id % templates.length]!;
  const label = t.header.data_label;
  const name = trimName(entry.filename);
  return {
    entry,
    name,
    item: {
      filename: entry.filename,
      path: entry.path,
      sortkey: entry.sortkey,
      stat: {
        path: entry.path,
        name: entry.filename,
        size: t.fileSize,
        lastModified: new Date(Date.UTC(2030, 0, 1)),
      },
      read: {
        name: entry.filename,
        compressed: false,
        fileMd5: t.fileMd5,
        fileSize: t.fileSize,
        dataMd5: t.dataMd5,
        dataSize: t.dataSize,
      },
      // Unique as in an archive, so that no index sees one key 1,000 times.
      rows: {
        header: {
          ...t.header,
          data_label:
            typeof label === "string"
              ? `${label}-${entry.id}`
              : (label ?? null),
        },
        instrument: t.instrument,
        warnings: [],
        reasons: {},
      },
    },
  };
}

async function child(): Promise<void> {
  const send = (message: FromChild) => process.send!(message);
  let templates: Template[] = [];
  let templatesFile = "";
  let stopping = false;
  let go: () => void = () => undefined;
  let commits: { at: number; files: number; ms: number }[] = [];
  let errors: string[] = [];
  let renewalFailures = 0;
  let dry = false;

  function record(files: number, ms: number) {
    commits.push({ at: Date.now(), files, ms });
  }
  function failed(error: unknown) {
    if (!stopping && errors.length < 20) {
      errors.push((error as Error).message);
    }
  }

  async function fitsfleetWorker(
    url: string,
    { name, phase, delay }: SimulatedWorker,
    next: () => number[] | undefined,
    paceMs: number,
    started: Promise<void>,
  ) {
    const db = new Db(url, {
      applicationName: `fleet-db ${name}`,
      max: 2,
      connectTimeoutMs: 300_000,
    });
    await started;
    if (paceMs > 0) {
      // A fleet's workers start and finish batches at their own times:
      // spread the first claims, and with them the lease renewals, over a
      // renewal period, as in a fleet that has been running for a while.
      await sleep((delay * DEFAULT_LEASE_SECONDS * 1000) / 3);
    }
    let first = true;
    try {
      while (!stopping) {
        const ids = next();
        if (ids === undefined) {
          if (!dry) {
            dry = true;
            send({ kind: "dry", at: Date.now() });
          }
          return;
        }
        const claim: Claim = {
          token: randomUUID(),
          worker: name,
          leaseSeconds: DEFAULT_LEASE_SECONDS,
        };
        const renewal = setInterval(
          () =>
            void db
              .withClient((c) => renewLease(c, claim, ids))
              .catch(() => renewalFailures++),
          (claim.leaseSeconds * 1000) / 3,
        );
        renewal.unref();
        try {
          const entries = await db.withClient((c) => claimRows(c, ids, claim));
          if (paceMs > 0) {
            await sleep(paceMs * entries.length * (first ? phase : 1));
          }
          first = false;
          const toWrite = entries.map((e) => prepare(e, templates));
          const t = Date.now();
          const written = await db.transaction(async (client) => {
            const owned = await lockOwnedRows(
              client,
              toWrite.map((p) => p.entry.id),
              claim.token,
            );
            const mine = toWrite.filter((p) => owned.has(p.entry.id));
            const present = await withPresentDiskfile(
              client,
              mine.map((p) => ({ name: p.name, path: p.entry.path })),
            );
            const fast = mine.filter(
              (p) => !present.has(`${p.entry.path}\0${p.name}`),
            );
            if (fast.length > 0) {
              const files = await fileIds(client, [
                ...new Set(fast.map((p) => p.name)),
              ]);
              const diskfileIds = await writeDiskfiles(
                client,
                fast.map((p) => ({ ...p.item, fileId: files.get(p.name)! })),
              );
              await finishRows(
                client,
                fast.map((p, i) => ({
                  id: p.entry.id,
                  state: "done",
                  outcome: "new",
                  error: null,
                  diskfileId: diskfileIds[i]!,
                  size: p.item.read.fileSize,
                  lastmod: p.item.stat.lastModified,
                })),
              );
            }
            return fast.length;
          });
          record(written, Date.now() - t);
          await db.withClient((c) => heldElsewhere(c, ids, claim.token));
        } finally {
          clearInterval(renewal);
        }
      }
    } catch (error) {
      failed(error);
    } finally {
      await db.end();
    }
  }

  /** One file at a time, as the reference's ingest threads do. */
  async function baselineWorker(
    client: PgClient,
    { name, phase }: SimulatedWorker,
    next: () => number[] | undefined,
    paceMs: number,
    started: Promise<void>,
  ) {
    await started;
    let first = true;
    try {
      while (!stopping) {
        const ids = next();
        if (ids === undefined) {
          if (!dry) {
            dry = true;
            send({ kind: "dry", at: Date.now() });
          }
          return;
        }
        for (const id of ids) {
          if (stopping) {
            return;
          }
          const claim: Claim = {
            token: randomUUID(),
            worker: name,
            leaseSeconds: DEFAULT_LEASE_SECONDS,
          };
          const [entry] = await claimRows(client, [id], claim);
          if (entry === undefined) {
            continue;
          }
          if (paceMs > 0) {
            await sleep(first ? paceMs * phase : paceMs);
          }
          first = false;
          const p = prepare(entry, templates);
          const t = Date.now();
          const written = await withTransaction(client, (c) =>
            writeOneFile(c, claim, p),
          );
          record(written ? 1 : 0, Date.now() - t);
        }
      }
    } catch (error) {
      failed(error);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  process.on("message", (message: ToChild) => {
    switch (message.kind) {
      case "start": {
        if (message.templates !== templatesFile) {
          templates = JSON.parse(
            readFileSync(message.templates, "utf8"),
          ) as Template[];
          templatesFile = message.templates;
        }
        stopping = false;
        dry = false;
        commits = [];
        errors = [];
        renewalFailures = 0;
        const started = new Promise<void>((resolve) => (go = resolve));
        let taken = 0;
        const next = () => {
          if (taken >= message.ids.length) {
            return undefined;
          }
          taken += message.take;
          return message.ids.slice(taken - message.take, taken);
        };
        void (async () => {
          if (message.contender === "fitsfleet") {
            const workers = message.workers.map((w) =>
              fitsfleetWorker(message.url, w, next, message.paceMs, started),
            );
            send({ kind: "ready" });
            await Promise.all(workers);
          } else {
            // Connect first (the reference's threads connect once, at start),
            // a few dozen at a time so that no connection times out.
            const connected: [SimulatedWorker, PgClient][] = [];
            const queue = [...message.workers];
            await Promise.all(
              Array.from({ length: 24 }, async () => {
                for (let w = queue.shift(); w; w = queue.shift()) {
                  const client = await connect(message.url, {
                    applicationName: `fleet-db ${w.name}`,
                    connectTimeoutMs: 120_000,
                  });
                  connected.push([w, client]);
                }
              }),
            );
            send({ kind: "ready" });
            await Promise.all(
              connected.map(([w, client]) =>
                baselineWorker(client, w, next, message.paceMs, started),
              ),
            );
          }
          send({ kind: "idle" });
        })().catch((error: unknown) => {
          failed(error);
          send({ kind: "idle" });
        });
        break;
      }
      case "go":
        go();
        break;
      case "stop": {
        stopping = true;
        const inWindow = commits.filter(
          (c) => c.at >= message.from && c.at <= message.to,
        );
        send({
          kind: "counted",
          files: inWindow.reduce((n, c) => n + c.files, 0),
          commits: inWindow.length,
          latencies: inWindow.map((c) => c.ms),
          errors,
          renewalFailures,
        });
        break;
      }
    }
  });
  process.on("disconnect", () => process.exit(0));
}

/** fitsfleet's careful per-file path (`writeOne`), for one file in its own transaction. */
async function writeOneFile(
  client: AnyClient,
  claim: Claim,
  p: Prepared,
): Promise<boolean> {
  const { entry, name } = p;
  await lockFileName(client, name);
  if (!(await lockOwnedRows(client, [entry.id], claim.token)).has(entry.id)) {
    return false;
  }
  const present = await presentDiskfiles(client, name, entry.path);
  if (present.length === 1 && present[0]!.file_md5 === p.item.read.fileMd5) {
    return false; // not in a fresh database
  }
  const fileId = (await fileIds(client, [name])).get(name)!;
  const superseded = await supersedeDiskfiles(client, fileId, entry.path);
  const [diskfileId] = await writeDiskfiles(client, [{ ...p.item, fileId }]);
  await finishRows(client, [
    {
      id: entry.id,
      state: "done",
      outcome: superseded ? "new version" : "new",
      error: null,
      diskfileId: diskfileId!,
      size: p.item.read.fileSize,
      lastmod: p.item.stat.lastModified,
    },
  ]);
  return true;
}

// --- the conductor ---------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      workers: { type: "string", default: "50,100,200,400,600" },
      "seconds-per-point": { type: "string", default: "8" },
      rounds: { type: "string", default: "2" },
      batch: { type: "string", default: String(DEFAULT_BATCH_SIZE) },
      "pool-size": { type: "string", default: "8" },
      processes: { type: "string", default: "2" },
      warmup: { type: "string", default: "4" },
      paced: { type: "string", default: "600" },
      "pace-ms": { type: "string", default: "300" },
      "paced-seconds": { type: "string", default: "20" },
      "paced-warmup": { type: "string", default: "20" },
      "ledger-rows": { type: "string", default: "400000" },
      templates: { type: "string", default: "1000" },
      "skip-check": { type: "boolean", default: false },
      "skip-build": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      statements: { type: "boolean", default: false },
    },
  });
  const list = (s: string) =>
    s
      .split(",")
      .filter((x) => x.trim() !== "")
      .map(Number);
  const opts = {
    workers: list(values.workers),
    seconds: Number(values["seconds-per-point"]),
    rounds: Number(values.rounds),
    batch: Number(values.batch),
    /** More than one: fitsfleet runs once per pool size, a contender each. */
    poolSizes: list(values["pool-size"]),
    processes: Number(values.processes),
    warmup: Number(values.warmup),
    paced: list(values.paced),
    paceMs: Number(values["pace-ms"]),
    pacedSeconds: Number(values["paced-seconds"]),
    pacedWarmup: Number(values["paced-warmup"]),
    ledgerRows: Number(values["ledger-rows"]),
    templates: Number(values.templates),
  };
  // With --json, stdout carries only the document.
  const say = (line: string) =>
    values.json ? process.stderr.write(`${line}\n`) : console.log(line);

  if (!values["skip-build"] && !values["skip-check"]) {
    // The check runs the built CLI.
    execFileSync("npm", ["run", "--silent", "build"], {
      cwd: packageRoot(),
      stdio: ["ignore", "ignore", "inherit"],
    });
  }
  const begun = performance.now();
  const made = await makeTemplates(opts.templates, say);
  const stackDir = mkdtempSync(join(tmpdir(), "fitsfleet-bench-stack-"));
  const bouncerDir = join(stackDir, "pgbouncer");
  const children: ReturnType<typeof fork>[] = [];
  try {
    const { state } = await stackUp(stackDir, {
      statementStats: values.statements,
    });
    const urls = stackUrls(state);
    if (values.statements) {
      await withClient(urls.adminUrl, (c) =>
        c.query("CREATE EXTENSION pg_stat_statements"),
      );
    }
    const maxConnections = Math.max(...opts.workers, ...opts.paced) + 30;
    await raiseMaxConnections(stackDir, state, maxConnections);
    const bouncer = {
      folder: bouncerDir,
      port: await freePort(),
      server: {
        host: "127.0.0.1",
        port: state.postgres.port,
        user: state.postgres.user,
        password: state.postgres.password,
      },
      poolMode: "transaction" as const,
      defaultPoolSize: opts.poolSizes[0],
      maxClientConn: 1000,
    };
    await startPgbouncer(bouncer);
    const machine = await describeMachine(urls.adminUrl);
    say(
      `${machine.cpus} cores (${machine.cpuModel}), ${machine.memoryGiB} GiB; PostgreSQL ${machine.postgres} (fsync on, synchronous_commit on, max_connections ${maxConnections}), ${machine.pgbouncer} (transaction pooling, default_pool_size ${opts.poolSizes.join(", ")}), Node ${process.version}`,
    );
    await withClient(urls.adminUrl, (c) =>
      c.query("CREATE DATABASE fleet_template"),
    );
    await withClient(dbUrl(urls.adminUrl, "fleet_template"), (c) =>
      runMigrations(c),
    );
    if (!values["skip-check"]) {
      // Before the ledger rows: a worker would queue them all again.
      await realWorkerCheck(
        made.archive,
        urls,
        (db) => pgbouncerUrl(bouncer, db),
        say,
      );
    }
    // Every point starts from a clone of this: 0.5 s, where writing the
    // rows takes several.
    const ids = await ledgerRows(
      dbUrl(urls.adminUrl, "fleet_template"),
      Math.max(
        opts.ledgerRows,
        Math.max(...opts.workers, ...opts.paced) * opts.batch * 2,
      ),
    );

    for (let i = 0; i < opts.processes; i++) {
      const c = fork(fileURLToPath(import.meta.url), ["--child"], {
        execArgv: ["--max-semi-space-size=64", "--import", "tsx"],
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      });
      children.push(c);
    }
    const postmaster = clusterPid(join(stackDir, "postgres"))!;
    const bouncerPid = pgbouncerPid(bouncerDir)!;
    const points: Point[] = [];
    let serial = 0;

    const runPoint = async (
      contender: Contender,
      pool: number | undefined,
      workers: number,
      paced: boolean,
      round: number,
    ): Promise<Point> => {
      const db = `fleet_${++serial}`;
      if (pool !== undefined) {
        // Taken by the pool pgbouncer makes for the new database.
        await withClient(pgbouncerUrl(bouncer, "pgbouncer"), (c) =>
          c.query(`SET default_pool_size = ${pool}`),
        );
      }
      await withClient(urls.adminUrl, (c) =>
        c.query(`CREATE DATABASE ${db} TEMPLATE fleet_template`),
      );
      const seconds = paced ? opts.pacedSeconds : opts.seconds;
      const warmup = paced ? opts.pacedWarmup : opts.warmup;
      const offered = paced ? (workers * 1000) / opts.paceMs : undefined;
      // The reference's threads take one file at a time.
      const take = contender === "fitsfleet" ? opts.batch : 1;
      const shares = children.map((): number[] => []);
      for (let i = 0; i < ids.length; i += take) {
        shares[(i / take) % children.length]!.push(...ids.slice(i, i + take));
      }
      const url =
        contender === "fitsfleet"
          ? pgbouncerUrl(bouncer, db)
          : dbUrl(urls.adminUrl, db);
      const dryAt: number[] = [];
      const inbox = children.map(() => new Inbox());
      children.forEach((c, k) =>
        c.on("message", (m: FromChild) => {
          if (m.kind === "dry") {
            dryAt.push(m.at);
          }
          inbox[k]!.put(m);
        }),
      );
      // Phases evenly spaced; start delays spread by the golden ratio, so
      // that neither follows the other.
      const fleet = Array.from(
        { length: workers },
        (_, i): SimulatedWorker => ({
          name: `w${i + 1}`,
          phase: (i + 0.5) / workers,
          delay: ((i + 0.5) * 0.6180339887) % 1,
        }),
      );
      children.forEach((c, k) => {
        c.send({
          kind: "start",
          contender,
          url,
          workers: fleet.filter((_, i) => i % children.length === k),
          ids: shares[k]!,
          take,
          paceMs: paced ? opts.paceMs : 0,
          templates: made.templates,
        } satisfies ToChild);
      });
      await Promise.all(inbox.map((b) => b.take("ready")));
      const load = loadavg()[0]!;
      children.forEach((c) => c.send({ kind: "go" } satisfies ToChild));
      await sleep(warmup * 1000);
      const monitor = new Monitor(
        urls.adminUrl,
        db,
        {
          postmaster,
          bouncer: bouncerPid,
          generator: children.map((c) => c.pid!),
          bouncerAdmin:
            contender === "fitsfleet"
              ? pgbouncerUrl(bouncer, "pgbouncer")
              : undefined,
        },
        values.statements,
      );
      await monitor.begin();
      const from = Date.now();
      const planned = from + seconds * 1000;
      while (Date.now() < planned && dryAt.length === 0) {
        await sleep(Math.min(200, planned - Date.now()));
      }
      const to = Math.min(Date.now(), ...dryAt);
      const measured = await monitor.end();
      children.forEach((c) =>
        c.send({ kind: "stop", from, to } satisfies ToChild),
      );
      const counts = await Promise.all(inbox.map((b) => b.take("counted")));
      if (contender === "fitsfleet") {
        // Waiting clients would otherwise queue for a server connection
        // one by one before they notice the stop.
        await withClient(pgbouncerUrl(bouncer, "pgbouncer"), async (c) => {
          await c.query(`KILL ${db}`);
          await c.query(`RESUME ${db}`);
        }).catch((error: unknown) => {
          const log = readFileSync(pgbouncerPaths(bouncerDir).log, "utf8")
            .trim()
            .split("\n")
            .slice(-8)
            .join("\n");
          say(
            `   pgbouncer's KILL ${db} failed (${(error as Error).message}); pgbouncer ${pgbouncerPid(bouncerDir) === undefined ? "is gone" : "runs"}; its log ends:\n${log}`,
          );
        });
      }
      await withClient(urls.adminUrl, (c) =>
        c.query(`DROP DATABASE ${db} WITH (FORCE)`),
      );
      await Promise.all(inbox.map((b) => b.take("idle")));
      children.forEach((c) => c.removeAllListeners("message"));
      const window = (to - from) / 1000;
      const done = counts.reduce((n, c) => n + c.files, 0);
      const latencies = counts
        .flatMap((c) => c.latencies)
        .sort((a, b) => a - b);
      const point: Point = {
        contender,
        pool,
        workers,
        paced,
        round,
        offered,
        seconds: window,
        ranDry: dryAt.length > 0 && dryAt[0]! < planned,
        files: done,
        filesPerSecond: done / window,
        writes: counts.reduce((n, c) => n + c.commits, 0),
        writeMs: {
          p50: quantile(latencies, 0.5),
          p99: quantile(latencies, 0.99),
        },
        errors: counts.flatMap((c) => c.errors).slice(0, 5),
        renewalFailures: counts.reduce((n, c) => n + c.renewalFailures, 0),
        loadBefore: load,
        ...measured,
      };
      return point;
    };

    say(
      `\n${opts.rounds} round(s); per point ${opts.warmup} s of warm-up, then ${opts.seconds} s measured (paced: ${opts.pacedWarmup} s, ${opts.pacedSeconds} s); batches of ${opts.batch}; ${opts.processes} generator processes; ${fmt(ids.length)} ledger rows; set up in ${fmt((performance.now() - begun) / 1000)} s`,
    );
    const contenders: [Contender, number | undefined][] = [
      ["baseline", undefined],
      ...opts.poolSizes.map((n) => ["fitsfleet", n] as [Contender, number]),
    ];
    for (let round = 1; round <= opts.rounds; round++) {
      // Turns in a new order each round, so no contender always follows the same one.
      const order = round % 2 === 1 ? contenders : [...contenders].reverse();
      const plan: [number, boolean][] = [
        ...opts.workers.map((w) => [w, false] as [number, boolean]),
        ...opts.paced.map((w) => [w, true] as [number, boolean]),
      ];
      for (const [workers, paced] of plan) {
        for (const [contender, pool] of order) {
          const p = await runPoint(contender, pool, workers, paced, round);
          points.push(p);
          say(describePoint(p));
        }
      }
    }
    say(`\nall points in ${fmt((performance.now() - begun) / 1000)} s`);
    const summary = summarise(points, opts);
    if (values.json) {
      console.log(
        JSON.stringify(
          {
            machine,
            options: opts,
            points,
            summary: summary.map(({ points: _, ...row }) => row),
          },
          null,
          2,
        ),
      );
    } else {
      printSummary(summary, opts, say);
    }
  } finally {
    for (const c of children) {
      c.kill();
    }
    await stopPgbouncer(bouncerDir).catch(() => undefined);
    await stackDown(stackDir, { purge: true }).catch(() => undefined);
    rmSync(stackDir, { recursive: true, force: true });
  }
}

/** Messages from one child, taken in order by kind. */
class Inbox {
  private readonly messages: FromChild[] = [];
  private waiting: (() => void) | undefined;

  put(m: FromChild) {
    this.messages.push(m);
    this.waiting?.();
  }

  async take<K extends FromChild["kind"]>(
    kind: K,
  ): Promise<Extract<FromChild, { kind: K }>> {
    for (;;) {
      const i = this.messages.findIndex((m) => m.kind === kind);
      if (i >= 0) {
        return this.messages.splice(i, 1)[0] as Extract<FromChild, { kind: K }>;
      }
      await new Promise<void>((resolve) => (this.waiting = resolve));
    }
  }
}

function dbUrl(adminUrl: string, db: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${db}`;
  return url.toString();
}

/**
 * The synthetic archive the rows come from (kept between runs) and, beside
 * it, each file's parsed-header data as JSON.
 */
async function makeTemplates(
  count: number,
  say: (line: string) => void,
): Promise<{ archive: string; templates: string }> {
  const dir = join(tmpdir(), `fitsfleet-bench-fleet-db-${count}`);
  const archive = join(dir, "archive");
  const templates = join(dir, "templates.json");
  if (!existsSync(templates)) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const t = performance.now();
    const written = await writeSyntheticArchive(archive, {
      files: count,
      dataScale: "tiny",
      compressedFraction: 0,
      corrupt: 0,
      layout: "by-night",
    });
    const rows: Template[] = [];
    for (const f of written) {
      const read = await readFitsFile(f.path);
      const r = archiveRows(read.structure, trimName(f.name), {
        reasons: false,
      });
      rows.push({
        header: r.header,
        instrument: r.instrument,
        fileMd5: read.fileMd5,
        fileSize: read.fileSize,
        dataMd5: read.dataMd5,
        dataSize: read.dataSize,
      });
    }
    writeFileSync(templates, JSON.stringify(rows));
    say(
      `templates: ${count} synthetic files parsed in ${((performance.now() - t) / 1000).toFixed(1)} s (kept in ${dir})`,
    );
  }
  return { archive, templates };
}

/** The baseline holds a connection per worker. */
async function raiseMaxConnections(
  stackDir: string,
  state: StackState,
  n: number,
): Promise<void> {
  await withClient(stackUrls(state).adminUrl, (c) =>
    c.query(`ALTER SYSTEM SET max_connections = ${n}`),
  );
  const folder = join(stackDir, "postgres");
  await stopCluster(folder);
  await startCluster(folder, state.postgres.port);
}

/**
 * `n` ledger rows through the project's enqueue statement: archive-like
 * names, a thousand nights of 4,000 frames, newest first. Returns the ids
 * in queue order.
 */
async function ledgerRows(url: string, n: number): Promise<number[]> {
  return withClient(url, async (c) => {
    await c.query(
      `CREATE TEMPORARY TABLE fleet_candidates AS
       SELECT d AS path, 'N' || d || 'S' || f || '.fits' AS filename,
              'z' || d || f AS sortkey, 20160::bigint AS size, now() AS lastmod
         FROM (SELECT to_char(date '2030-01-01' - g / 4000, 'YYYYMMDD') AS d,
                      lpad((g % 4000 + 1)::text, 4, '0') AS f
                 FROM generate_series(0, $1 - 1) AS g) AS names`,
      [n],
    );
    const { ids } = await insertLedgerRows(c, "fleet_candidates", {
      storage: LEDGER_STORAGE,
      force: false,
      forceMd5: false,
      notBefore: null,
    });
    // As autovacuum leaves a ledger some time after its enqueue; and so
    // that no autovacuum of the template is running when a point clones it.
    await c.query("VACUUM (FREEZE, ANALYZE) fitsfleet.ingest_ledger");
    return ids;
  });
}

/** The real worker, through pgbouncer, on the synthetic archive. */
async function realWorkerCheck(
  archive: string,
  urls: { adminUrl: string; redisUrl: string },
  pooled: (db: string) => string,
  say: (line: string) => void,
): Promise<void> {
  const db = "fleet_check";
  await withClient(urls.adminUrl, (c) =>
    c.query(`CREATE DATABASE ${db} TEMPLATE fleet_template`),
  );
  // The enqueue keeps a session's temporary table between transactions:
  // it goes to the server directly.
  const storage = openStorage(archive);
  const queue = `fleet-db-check-${randomUUID()}`;
  await enqueue({
    databaseUrl: dbUrl(urls.adminUrl, db),
    redisUrl: urls.redisUrl,
    queue,
    storage,
    storageLocation: archive,
    batchSize: 50,
  }).finally(() => storage.close());
  const expected = readdirSync(archive, { recursive: true }).filter((f) =>
    String(f).endsWith(".fits"),
  ).length;
  const result = await runLocalWorkers({
    databaseUrl: pooled(db),
    redisUrl: urls.redisUrl,
    queue,
    workers: 2,
    name: "fleet-db-check",
    fastRebuild: true,
  });
  const { counts } = result.status;
  if (counts.done !== expected || counts.failed > 0) {
    throw new Error(
      `the real worker through pgbouncer ingested ${counts.done} of ${expected} files (${counts.failed} failed)`,
    );
  }
  await withClient(urls.adminUrl, (c) =>
    c.query(`DROP DATABASE ${db} WITH (FORCE)`),
  );
  say(
    `check: 2 real \`worker ingest --fast-rebuild\` processes through pgbouncer (transaction pooling) ingested all ${expected} files of the synthetic archive in ${result.seconds.toFixed(1)} s`,
  );
}

// --- measuring ---------------------------------------------------------------------------

const CLOCK_TICKS = Number(
  execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim(),
);

/** utime, stime, cutime, cstime of a process, in clock ticks. */
function processTicks(pid: number): [number, number, number, number] {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return [Number(f[11]), Number(f[12]), Number(f[13]), Number(f[14])];
  } catch {
    return [0, 0, 0, 0];
  }
}

/**
 * PostgreSQL's CPU: the postmaster with its reaped children, and every live
 * child. A backend that exits in the window moves from the second sum to the
 * first, so differences stay right.
 */
function postgresTicks(postmaster: number): number {
  const [u, s, cu, cs] = processTicks(postmaster);
  let total = u + s + cu + cs;
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) {
      continue;
    }
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(f[1]) === postmaster) {
        total += Number(f[11]) + Number(f[12]);
      }
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

/** The machine's busy and stolen time (all cores), in clock ticks. */
function machineTicks(): { busy: number; steal: number } {
  const line = readFileSync("/proc/stat", "latin1").split("\n", 1)[0]!;
  const [user, nice, system, , , irq, softirq, steal] = line
    .split(/\s+/)
    .slice(1)
    .map(Number);
  return {
    busy: user! + nice! + system! + irq! + softirq!,
    steal: steal ?? 0,
  };
}

interface CpuReading {
  at: number;
  postgres: number;
  bouncer: number;
  generator: number;
  /** This process (the conductor and its sampling), in µs. */
  monitorUs: number;
  machine: { busy: number; steal: number };
}

interface DbReading {
  commits: number;
  rollbacks: number;
  inserted: number;
  updated: number;
  deadlocks: number;
  walBytes: number;
  walRecords: number;
  walFpi: number;
  walSyncs: number;
  checkpoints: number;
  bouncerXacts: number;
  bouncerWaitUs: number;
}

interface Measured {
  /** Cores busy on average over the window. */
  cpu: {
    postgres: number;
    pgbouncer: number;
    generator: number;
    monitor: number;
    machine: number;
    steal: number;
  };
  commitsPerSecond: number;
  rowsInsertedPerSecond: number;
  walMiBPerSecond: number;
  walBytesPerFile?: number;
  walSyncsPerSecond: number;
  checkpoints: number;
  deadlocks: number;
  rollbacks: number;
  /** Average number of the point's backends in each state (pg_stat_activity every 100 ms). */
  backends: Record<string, number>;
  /** With --statements: the statements that took most of the backends' time (execution, not waits for the client). */
  statements?: { query: string; calls: number; ms: number; share: number }[];
  /** pgbouncer: clients waiting for a server connection (average), and their mean wait per transaction. */
  bouncer?: { waitingClients: number; waitMsPerXact: number };
}

class Monitor {
  private client: PgClient | undefined;
  private admin: PgClient | undefined;
  private cpu0: CpuReading | undefined;
  private db0: DbReading | undefined;
  private sampling: Promise<void> = Promise.resolve();
  private stop = false;
  private samples = 0;
  private readonly states = new Map<string, number>();
  private waitingSamples = 0;
  private waiting = 0;

  constructor(
    private readonly adminUrl: string,
    private readonly db: string,
    private readonly pids: {
      postmaster: number;
      bouncer: number;
      generator: number[];
      bouncerAdmin: string | undefined;
    },
    /** pg_stat_statements is loaded: report where the backends' time went. */
    private readonly statements: boolean,
  ) {}

  async begin(): Promise<void> {
    this.client = await connect(this.adminUrl, {
      applicationName: "fleet-db monitor",
    });
    if (this.pids.bouncerAdmin !== undefined) {
      this.admin = await connect(this.pids.bouncerAdmin);
    }
    if (this.statements) {
      await this.client.query("SELECT pg_stat_statements_reset()");
    }
    this.db0 = await this.readDb();
    this.cpu0 = this.readCpu();
    this.sampling = this.sample();
  }

  private readCpu(): CpuReading {
    const usage = process.cpuUsage();
    return {
      at: performance.now(),
      postgres: postgresTicks(this.pids.postmaster),
      bouncer: processTicks(this.pids.bouncer)
        .slice(0, 2)
        .reduce((a, b) => a + b, 0),
      generator: this.pids.generator
        .map((pid) =>
          processTicks(pid)
            .slice(0, 2)
            .reduce((a, b) => a + b, 0),
        )
        .reduce((a, b) => a + b, 0),
      monitorUs: usage.user + usage.system,
      machine: machineTicks(),
    };
  }

  private async readDb(): Promise<DbReading> {
    const { rows } = await this.client!.query<Record<string, string>>(
      `SELECT d.xact_commit::text AS commits, d.xact_rollback::text AS rollbacks,
              d.tup_inserted::text AS inserted, d.tup_updated::text AS updated,
              d.deadlocks::text AS deadlocks,
              w.wal_bytes::text AS wal_bytes, w.wal_records::text AS wal_records,
              w.wal_fpi::text AS wal_fpi, w.wal_sync::text AS wal_syncs,
              (b.checkpoints_timed + b.checkpoints_req)::text AS checkpoints
         FROM pg_stat_database d, pg_stat_wal w, pg_stat_bgwriter b
        WHERE d.datname = $1`,
      [this.db],
    );
    const r = rows[0]!;
    let bouncerXacts = 0;
    let bouncerWaitUs = 0;
    if (this.admin !== undefined) {
      const stats =
        await this.admin.query<Record<string, string>>("SHOW STATS");
      const s = stats.rows.find((x) => x.database === this.db);
      bouncerXacts = Number(s?.total_xact_count ?? 0);
      bouncerWaitUs = Number(s?.total_wait_time ?? 0);
    }
    return {
      commits: Number(r.commits),
      rollbacks: Number(r.rollbacks),
      inserted: Number(r.inserted),
      updated: Number(r.updated),
      deadlocks: Number(r.deadlocks),
      walBytes: Number(r.wal_bytes),
      walRecords: Number(r.wal_records),
      walFpi: Number(r.wal_fpi),
      walSyncs: Number(r.wal_syncs),
      checkpoints: Number(r.checkpoints),
      bouncerXacts,
      bouncerWaitUs,
    };
  }

  /** The statements that took most of the backends' time, with their share of it. */
  private async topStatements(): Promise<Measured["statements"]> {
    const { rows } = await this.client!.query<{
      query: string;
      calls: string;
      ms: number;
      share: number;
    }>(
      `SELECT regexp_replace(s.query, '\\s+', ' ', 'g') AS query, s.calls::text AS calls,
              s.total_exec_time AS ms,
              s.total_exec_time / nullif(sum(s.total_exec_time) OVER (), 0) AS share
         FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
        WHERE d.datname = $1
        ORDER BY s.total_exec_time DESC LIMIT 8`,
      [this.db],
    );
    return rows.map((r) => ({
      query: r.query.slice(0, 90),
      calls: Number(r.calls),
      ms: r.ms,
      share: r.share,
    }));
  }

  private async sample(): Promise<void> {
    let round = 0;
    while (!this.stop) {
      const { rows } = await this.client!.query<{ what: string; n: number }>(
        `SELECT CASE WHEN state = 'idle in transaction' THEN 'idle in transaction (waiting for its client)'
                     WHEN state = 'idle' THEN 'idle'
                     WHEN wait_event_type IS NULL THEN 'on CPU'
                     ELSE wait_event_type || ':' || wait_event END AS what,
                count(*)::int AS n
           FROM pg_stat_activity
          WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()
          GROUP BY 1`,
        [this.db],
      );
      this.samples++;
      for (const r of rows) {
        this.states.set(r.what, (this.states.get(r.what) ?? 0) + r.n);
      }
      if (this.admin !== undefined && round++ % 5 === 0) {
        const pools =
          await this.admin.query<Record<string, string>>("SHOW POOLS");
        this.waitingSamples++;
        this.waiting += pools.rows
          .filter((p) => p.database === this.db)
          .reduce((n, p) => n + Number(p.cl_waiting), 0);
      }
      await sleep(100);
    }
  }

  async end(): Promise<Measured> {
    const cpu1 = this.readCpu();
    this.stop = true;
    await this.sampling;
    const db1 = await this.readDb();
    const statements = this.statements ? await this.topStatements() : undefined;
    await this.client?.end();
    await this.admin?.end();
    const cpu0 = this.cpu0!;
    const db0 = this.db0!;
    const seconds = (cpu1.at - cpu0.at) / 1000;
    const cores = (ticks: number) => ticks / CLOCK_TICKS / seconds;
    const rate = (k: keyof DbReading) => (db1[k] - db0[k]) / seconds;
    const backends = Object.fromEntries(
      [...this.states]
        .map(([k, v]) => [k, v / Math.max(1, this.samples)] as const)
        .sort((a, b) => b[1] - a[1]),
    );
    const xacts = db1.bouncerXacts - db0.bouncerXacts;
    return {
      cpu: {
        postgres: cores(cpu1.postgres - cpu0.postgres),
        pgbouncer: cores(cpu1.bouncer - cpu0.bouncer),
        generator: cores(cpu1.generator - cpu0.generator),
        monitor: (cpu1.monitorUs - cpu0.monitorUs) / 1e6 / seconds,
        machine: cores(cpu1.machine.busy - cpu0.machine.busy),
        steal: cores(cpu1.machine.steal - cpu0.machine.steal),
      },
      commitsPerSecond: rate("commits"),
      rowsInsertedPerSecond: rate("inserted"),
      walMiBPerSecond: rate("walBytes") / 1024 / 1024,
      walSyncsPerSecond: rate("walSyncs"),
      checkpoints: db1.checkpoints - db0.checkpoints,
      deadlocks: db1.deadlocks - db0.deadlocks,
      rollbacks: db1.rollbacks - db0.rollbacks,
      backends,
      statements,
      ...(this.admin !== undefined && {
        bouncer: {
          waitingClients: this.waiting / Math.max(1, this.waitingSamples),
          waitMsPerXact:
            xacts > 0
              ? (db1.bouncerWaitUs - db0.bouncerWaitUs) / 1000 / xacts
              : 0,
        },
      }),
    };
  }
}

interface Point extends Measured {
  contender: Contender;
  /** fitsfleet: pgbouncer's default_pool_size. */
  pool: number | undefined;
  workers: number;
  paced: boolean;
  round: number;
  /** Paced: the files/s the workers ask for (workers / pace). */
  offered: number | undefined;
  seconds: number;
  ranDry: boolean;
  files: number;
  filesPerSecond: number;
  writes: number;
  writeMs: { p50: number; p99: number };
  errors: string[];
  renewalFailures: number;
  loadBefore: number;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) {
    return 0;
  }
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });

/** The three largest shares of the backends' time, e.g. "on CPU 3.1, LWLock:WALWrite 0.4". */
function topStates(backends: Record<string, number>, n = 3): string {
  return Object.entries(backends)
    .filter(([k]) => k !== "idle")
    .slice(0, n)
    .map(([k, v]) => `${k} ${v.toFixed(1)}`)
    .join(", ");
}

function describePoint(p: Point): string {
  const c = p.cpu;
  return [
    `r${p.round} ${label(p).padEnd(17)} ${String(p.workers).padStart(4)} workers${p.paced ? " paced" : ""}: ${fmt(p.filesPerSecond)} files/s${p.offered === undefined ? "" : ` (offered ${fmt(p.offered)})`}${p.ranDry ? " (ran dry)" : ""}, write p50/p99 ${fmt(p.writeMs.p50)}/${fmt(p.writeMs.p99)} ms, load ${p.loadBefore.toFixed(1)}`,
    `      CPU cores: postgres ${c.postgres.toFixed(2)}, pgbouncer ${c.pgbouncer.toFixed(2)}, generator ${c.generator.toFixed(2)}, monitor ${c.monitor.toFixed(2)}, machine ${c.machine.toFixed(2)} (other processes ${(c.machine - c.postgres - c.pgbouncer - c.generator - c.monitor).toFixed(2)}, steal ${c.steal.toFixed(2)}); ${fmt(p.commitsPerSecond)} commits/s, ${fmt(p.walMiBPerSecond, 1)} MiB/s WAL (${fmt((p.walMiBPerSecond * 1024 * 1024) / Math.max(1, p.filesPerSecond))} B/file), ${fmt(p.walSyncsPerSecond)} WAL syncs/s, ${p.checkpoints} checkpoint(s)`,
    `      backends: ${topStates(p.backends, 4)}${p.bouncer === undefined ? "" : `; pgbouncer: ${fmt(p.bouncer.waitingClients)} clients waiting, ${fmt(p.bouncer.waitMsPerXact, 1)} ms wait per transaction`}${p.errors.length > 0 ? `; errors: ${p.errors.join(" | ")}` : ""}${p.renewalFailures > 0 ? `; ${p.renewalFailures} lease renewals failed` : ""}`,
    ...(p.statements ?? []).map(
      (st) =>
        `      ${(st.share * 100).toFixed(0).padStart(3)}% ${fmt(st.calls).padStart(7)} calls ${(st.ms / st.calls).toFixed(2).padStart(7)} ms  ${st.query}`,
    ),
  ].join("\n");
}

const label = (p: { contender: Contender; pool: number | undefined }) =>
  p.pool === undefined ? p.contender : `${p.contender} (pool ${p.pool})`;

interface SummaryRow {
  workers: number;
  paced: boolean;
  /** baseline or "fitsfleet (pool N)" */
  contender: string;
  points: Point[];
  filesPerSecond: number;
  /** Against the baseline's median at the same worker count. */
  ratio: number | undefined;
}

function summarise(
  points: Point[],
  opts: { workers: number[]; paced: number[] },
): SummaryRow[] {
  const rows: SummaryRow[] = [];
  const labels = [...new Set(points.map(label))];
  for (const [workers, paced] of [
    ...opts.workers.map((w) => [w, false] as const),
    ...opts.paced.map((w) => [w, true] as const),
  ]) {
    const of = (l: string) =>
      points.filter(
        (p) => label(p) === l && p.workers === workers && p.paced === paced,
      );
    const baseline = median(of("baseline").map((p) => p.filesPerSecond));
    for (const l of labels) {
      const rate = median(of(l).map((p) => p.filesPerSecond));
      rows.push({
        workers,
        paced,
        contender: l,
        points: of(l),
        filesPerSecond: rate,
        ratio: l === "baseline" ? undefined : rate / baseline,
      });
    }
  }
  return rows;
}

function printSummary(
  rows: SummaryRow[],
  opts: { rounds: number; paceMs: number },
  say: (line: string) => void,
): void {
  const m = (ps: Point[], f: (p: Point) => number) => median(ps.map(f));
  say(
    `\nMedians of ${opts.rounds} round(s). CPU in cores: postgres / pgbouncer / load generator / other processes. "files per PG CPU-s": files/s over postgres's cores. Backends: the average number of the point's backends in each state.`,
  );
  say(
    "| workers | contender | files/s | vs baseline | CPU pg / bouncer / gen / other | files per PG CPU-s | commits/s | WAL MiB/s | write p50 / p99 ms | backends |",
  );
  say("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
  for (const r of rows) {
    const ps = r.points;
    const pg = m(ps, (p) => p.cpu.postgres);
    const other = m(
      ps,
      (p) =>
        p.cpu.machine -
        p.cpu.postgres -
        p.cpu.pgbouncer -
        p.cpu.generator -
        p.cpu.monitor,
    );
    // The backends of the median round.
    const middle = [...ps].sort((a, b) => a.filesPerSecond - b.filesPerSecond)[
      Math.floor(ps.length / 2)
    ]!;
    say(
      `| ${r.workers}${r.paced ? ` paced (${opts.paceMs} ms/file)` : ""} | ${r.contender} | ${fmt(r.filesPerSecond)} | ${r.ratio === undefined ? "" : `${r.ratio.toFixed(2)}x`} | ${pg.toFixed(2)} / ${m(ps, (p) => p.cpu.pgbouncer).toFixed(2)} / ${m(ps, (p) => p.cpu.generator).toFixed(2)} / ${other.toFixed(2)} | ${fmt(m(ps, (p) => p.filesPerSecond / p.cpu.postgres))} | ${fmt(m(ps, (p) => p.commitsPerSecond))} | ${m(ps, (p) => p.walMiBPerSecond).toFixed(1)} | ${fmt(m(ps, (p) => p.writeMs.p50))} / ${fmt(m(ps, (p) => p.writeMs.p99))} | ${topStates(middle.backends)} |`,
    );
  }
  // Files/s move with what else the machine runs; PostgreSQL's CPU per
  // file does not.
  for (const l of [...new Set(rows.map((r) => r.contender))]) {
    const unpaced = rows.filter((r) => !r.paced && r.contender === l);
    if (unpaced.length === 0) {
      continue;
    }
    const best = unpaced.reduce((a, b) =>
      b.filesPerSecond > a.filesPerSecond ? b : a,
    );
    const knee = unpaced.find(
      (r) => r.filesPerSecond >= 0.9 * best.filesPerSecond,
    );
    const perFile = unpaced.map(
      (r) => 1000 / m(r.points, (p) => p.filesPerSecond / p.cpu.postgres),
    );
    say(
      `${l}: at most ${fmt(best.filesPerSecond)} files/s unthrottled (${best.workers} workers); within 10% of that from ${knee?.workers} workers on; PostgreSQL's CPU per file ${Math.min(...perFile).toFixed(2)} to ${Math.max(...perFile).toFixed(2)} ms`,
    );
  }
}

async function describeMachine(adminUrl: string) {
  const postgres = await withClient(adminUrl, async (c) => {
    const { rows } = await c.query<{ v: string }>(
      "SELECT current_setting('server_version') AS v",
    );
    return rows[0]!.v;
  });
  const bouncer = execFileSync(pgbouncerProgram(), ["--version"], {
    encoding: "utf8",
  }).split("\n", 1)[0]!;
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    postgres,
    pgbouncer: bouncer,
    node: process.version,
  };
}

// Last: main() needs every class and constant above.
if (process.argv.includes("--child")) {
  await child();
} else {
  await main();
}
