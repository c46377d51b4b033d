/**
 * A previous-version (FitsStorage v2, the "2020-1" generation) archive
 * database, for the tests and benchmarks of `upgrade migrate-tables`.
 *
 * It holds the v2 definitions of the 14 preserved tables (DOMAIN.md §1.6, read
 * from the v2 ORM in `fits_storage/orm/*.py`) with realistic bulk rows made on
 * the server from generate_series, plus hand-written rows that a careless copy
 * breaks: NULLs, quotes, backslashes (also a literal `\N` and `\.` line), tabs,
 * CR/LF, non-ASCII, empty strings, 100 kB text, infinite and far-BC/AD
 * timestamps, numeric limits, id gaps, sequences ahead of max(id) and one
 * sequence that no column owns (RELIABILITY.md §1.7). A few non-preserved v2
 * tables (file, diskfile, header, an enum type) make a whole-database dump
 * hold things the upgrade must leave out.
 *
 * Generation is deterministic: every bulk value is arithmetic on the row
 * number and the seed, so the same options give the same rows, byte for byte.
 */
import type { ClientBase } from "pg";

import { clientProgramConnection } from "../db/client-programs.js";
import { quoteIdent } from "../db/sql.js";
import { PreconditionError, UsageError } from "../errors.js";
import { run } from "../exec.js";
import { postgresProgram } from "../programs.js";

/** The preserved tables under their v2 names, parents before children. */
export const PREVIOUS_VERSION_TABLES = [
  "archiveuser",
  "userprogram",
  "notification",
  "glacier",
  "usagelog",
  "querylog",
  "downloadlog",
  "filedownloadlog",
  "fileuploadlog",
  "qareport",
  "qametriciq",
  "qametricpe",
  "qametricsb",
  "qametriczp",
] as const;

export type PreviousVersionTable = (typeof PREVIOUS_VERSION_TABLES)[number];

/** v2 tables in the fixture that are not carried over (a rebuild recreates them). */
export const PREVIOUS_VERSION_OTHER_TABLES = [
  "file",
  "diskfile",
  "header",
] as const;

/** Used by glacier.id's default but owned by no column (pg_dump -t glacier leaves it out). */
export const UNOWNED_SEQUENCE = "glacier_id_seq";

/**
 * Tables, sequences and primary keys. SQLAlchemy writes the foreign keys inside
 * CREATE TABLE; we add them after the bulk load (PREVIOUS_VERSION_INDEXES_SQL),
 * which gives the same constraint names (<table>_<column>_fkey) and catalog.
 */
const TABLES_SQL = `
CREATE TABLE archiveuser (
	id SERIAL NOT NULL,
	orcid_id VARCHAR(20),
	username TEXT NOT NULL,
	fullname TEXT,
	password TEXT,
	salt TEXT,
	email TEXT,
	gemini_staff BOOLEAN,
	misc_upload BOOLEAN,
	user_admin BOOLEAN,
	superuser BOOLEAN,
	reset_token TEXT,
	reset_token_expires TIMESTAMP WITHOUT TIME ZONE,
	cookie TEXT,
	account_created TIMESTAMP WITHOUT TIME ZONE,
	password_changed TIMESTAMP WITHOUT TIME ZONE,
	PRIMARY KEY (id)
);

CREATE TABLE userprogram (
	id SERIAL NOT NULL,
	user_id INTEGER NOT NULL,
	program_id TEXT,
	observation_id TEXT,
	filename TEXT,
	path TEXT,
	PRIMARY KEY (id)
);

CREATE TABLE notification (
	id SERIAL NOT NULL,
	label TEXT,
	selection TEXT,
	piemail TEXT,
	ngoemail TEXT,
	csemail TEXT,
	internal BOOLEAN,
	PRIMARY KEY (id)
);

-- glacier as recreated by hand on a server: the sequence is made separately and
-- never OWNED BY the column, so only the column default ties it to the table.
CREATE SEQUENCE glacier_id_seq;

CREATE TABLE glacier (
	id INTEGER DEFAULT nextval('glacier_id_seq'::regclass) NOT NULL,
	filename TEXT NOT NULL,
	md5 TEXT NOT NULL,
	when_uploaded TIMESTAMP WITHOUT TIME ZONE,
	last_inventory TIMESTAMP WITHOUT TIME ZONE,
	PRIMARY KEY (id)
);

CREATE TABLE usagelog (
	id SERIAL NOT NULL,
	utdatetime TIMESTAMP WITHOUT TIME ZONE,
	user_id INTEGER,
	ip_address TEXT,
	user_agent TEXT,
	referer TEXT,
	method TEXT,
	uri TEXT,
	this TEXT,
	bytes BIGINT,
	status INTEGER,
	notes TEXT,
	PRIMARY KEY (id)
);

CREATE TABLE querylog (
	id SERIAL NOT NULL,
	usagelog_id INTEGER NOT NULL,
	summarytype TEXT,
	selection TEXT,
	numresults INTEGER,
	numcalresults INTEGER,
	query_started TIMESTAMP WITHOUT TIME ZONE,
	query_completed TIMESTAMP WITHOUT TIME ZONE,
	cals_completed TIMESTAMP WITHOUT TIME ZONE,
	summary_completed TIMESTAMP WITHOUT TIME ZONE,
	notes TEXT,
	PRIMARY KEY (id)
);

CREATE TABLE downloadlog (
	id SERIAL NOT NULL,
	usagelog_id INTEGER NOT NULL,
	selection TEXT,
	numresults INTEGER,
	sending_files BOOLEAN,
	numdenied INTEGER,
	query_started TIMESTAMP WITHOUT TIME ZONE,
	query_completed TIMESTAMP WITHOUT TIME ZONE,
	download_completed TIMESTAMP WITHOUT TIME ZONE,
	notes TEXT,
	PRIMARY KEY (id)
);

CREATE TABLE filedownloadlog (
	id SERIAL NOT NULL,
	usagelog_id INTEGER NOT NULL,
	diskfile_filename TEXT,
	diskfile_file_md5 TEXT,
	diskfile_file_size BIGINT,
	ut_datetime TIMESTAMP WITHOUT TIME ZONE,
	released BOOLEAN,
	pi_access BOOLEAN,
	staff_access BOOLEAN,
	magic_access BOOLEAN,
	eng_access BOOLEAN,
	canhaveit BOOLEAN,
	notes TEXT,
	PRIMARY KEY (id)
);

CREATE TABLE fileuploadlog (
	id SERIAL NOT NULL,
	usagelog_id INTEGER NOT NULL,
	ut_transfer_start TIMESTAMP WITHOUT TIME ZONE,
	ut_transfer_complete TIMESTAMP WITHOUT TIME ZONE,
	filename TEXT,
	size INTEGER,
	md5 TEXT,
	processed_cal BOOLEAN,
	invoke_status INTEGER,
	invoke_pid INTEGER,
	destination TEXT,
	s3_ut_start TIMESTAMP WITHOUT TIME ZONE,
	s3_ut_end TIMESTAMP WITHOUT TIME ZONE,
	s3_ok BOOLEAN,
	file_ok BOOLEAN,
	ingestqueue_id INTEGER,
	notes TEXT,
	PRIMARY KEY (id)
);

CREATE TABLE qareport (
	id SERIAL NOT NULL,
	hostname TEXT,
	userid TEXT,
	processid INTEGER,
	executable TEXT,
	software TEXT,
	software_version TEXT,
	context TEXT,
	submit_time TIMESTAMP WITHOUT TIME ZONE,
	submit_host TEXT,
	PRIMARY KEY (id)
);

CREATE TABLE qametriciq (
	id SERIAL NOT NULL,
	qareport_id INTEGER,
	datalabel TEXT,
	filename TEXT,
	detector TEXT,
	fwhm NUMERIC(6, 3),
	fwhm_std NUMERIC(6, 3),
	isofwhm NUMERIC(6, 3),
	isofwhm_std NUMERIC(6, 3),
	ee50d NUMERIC(6, 3),
	ee50d_std NUMERIC(6, 3),
	elip NUMERIC(5, 3),
	elip_std NUMERIC(5, 3),
	pa NUMERIC(6, 3),
	pa_std NUMERIC(6, 3),
	adaptive_optics BOOLEAN,
	ao_seeing NUMERIC(6, 3),
	strehl NUMERIC(6, 3),
	strehl_std NUMERIC(6, 3),
	nsamples INTEGER,
	percentile_band TEXT,
	comment TEXT,
	PRIMARY KEY (id)
);

CREATE TABLE qametricpe (
	id SERIAL NOT NULL,
	qareport_id INTEGER,
	datalabel TEXT,
	filename TEXT,
	detector TEXT,
	dra NUMERIC(9, 3),
	dra_std NUMERIC(9, 3),
	ddec NUMERIC(9, 3),
	ddec_std NUMERIC(9, 3),
	astref TEXT,
	nsamples INTEGER,
	comment TEXT,
	PRIMARY KEY (id)
);

CREATE TABLE qametricsb (
	id SERIAL NOT NULL,
	qareport_id INTEGER,
	datalabel TEXT,
	filename TEXT,
	detector TEXT,
	mag NUMERIC(5, 3),
	mag_std NUMERIC(5, 3),
	electrons NUMERIC(9, 2),
	electrons_std NUMERIC(7, 2),
	nsamples INTEGER,
	percentile_band TEXT,
	comment TEXT,
	PRIMARY KEY (id)
);

CREATE TABLE qametriczp (
	id SERIAL NOT NULL,
	qareport_id INTEGER,
	datalabel TEXT,
	filename TEXT,
	detector TEXT,
	mag NUMERIC(5, 3),
	mag_std NUMERIC(5, 3),
	cloud NUMERIC(5, 3),
	cloud_std NUMERIC(5, 3),
	photref TEXT,
	nsamples INTEGER,
	percentile_band TEXT,
	comment TEXT,
	PRIMARY KEY (id)
);

-- Not preserved: a rebuild recreates these. Cut down to a few columns; the enum
-- type also exists in the v3 schema, so restoring it there would clash.
CREATE TYPE telescope AS ENUM ('Gemini-North', 'Gemini-South');

CREATE TABLE file (
	id SERIAL NOT NULL,
	name TEXT NOT NULL,
	PRIMARY KEY (id)
);

CREATE TABLE diskfile (
	id SERIAL NOT NULL,
	file_id INTEGER NOT NULL,
	filename TEXT,
	path TEXT,
	present BOOLEAN,
	canonical BOOLEAN,
	file_md5 TEXT,
	file_size INTEGER,
	lastmod TIMESTAMP WITH TIME ZONE,
	entrytime TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (id)
);

CREATE TABLE header (
	id SERIAL NOT NULL,
	diskfile_id INTEGER NOT NULL,
	program_id TEXT,
	observation_id TEXT,
	data_label TEXT,
	telescope telescope,
	instrument TEXT,
	ut_datetime TIMESTAMP WITHOUT TIME ZONE,
	PRIMARY KEY (id)
);
`;

/**
 * Foreign keys and secondary indexes (v2 ORM `index=True` columns). The v2 qa
 * tables declare no indexes; v3 added ix_qametric*_{qareport_id,datalabel}.
 */
const INDEXES_SQL = `
ALTER TABLE userprogram ADD FOREIGN KEY(user_id) REFERENCES archiveuser (id);
ALTER TABLE usagelog ADD FOREIGN KEY(user_id) REFERENCES archiveuser (id);
ALTER TABLE querylog ADD FOREIGN KEY(usagelog_id) REFERENCES usagelog (id);
ALTER TABLE downloadlog ADD FOREIGN KEY(usagelog_id) REFERENCES usagelog (id);
ALTER TABLE filedownloadlog ADD FOREIGN KEY(usagelog_id) REFERENCES usagelog (id);
ALTER TABLE fileuploadlog ADD FOREIGN KEY(usagelog_id) REFERENCES usagelog (id);
ALTER TABLE qametriciq ADD FOREIGN KEY(qareport_id) REFERENCES qareport (id);
ALTER TABLE qametricpe ADD FOREIGN KEY(qareport_id) REFERENCES qareport (id);
ALTER TABLE qametricsb ADD FOREIGN KEY(qareport_id) REFERENCES qareport (id);
ALTER TABLE qametriczp ADD FOREIGN KEY(qareport_id) REFERENCES qareport (id);
ALTER TABLE diskfile ADD FOREIGN KEY(file_id) REFERENCES file (id);
ALTER TABLE header ADD FOREIGN KEY(diskfile_id) REFERENCES diskfile (id);

CREATE INDEX ix_archiveuser_orcid_id ON archiveuser (orcid_id);
CREATE INDEX ix_archiveuser_username ON archiveuser (username);
CREATE INDEX ix_archiveuser_cookie ON archiveuser (cookie);
CREATE INDEX ix_userprogram_user_id ON userprogram (user_id);
CREATE INDEX ix_userprogram_program_id ON userprogram (program_id);
CREATE INDEX ix_userprogram_observation_id ON userprogram (observation_id);
CREATE INDEX ix_userprogram_filename ON userprogram (filename);
CREATE INDEX ix_userprogram_path ON userprogram (path);
CREATE INDEX ix_glacier_filename ON glacier (filename);
CREATE INDEX ix_glacier_md5 ON glacier (md5);
CREATE INDEX ix_usagelog_utdatetime ON usagelog (utdatetime);
CREATE INDEX ix_usagelog_user_id ON usagelog (user_id);
CREATE INDEX ix_usagelog_ip_address ON usagelog (ip_address);
CREATE INDEX ix_usagelog_this ON usagelog (this);
CREATE INDEX ix_usagelog_status ON usagelog (status);
CREATE INDEX ix_querylog_usagelog_id ON querylog (usagelog_id);
CREATE INDEX ix_querylog_summarytype ON querylog (summarytype);
CREATE INDEX ix_downloadlog_usagelog_id ON downloadlog (usagelog_id);
CREATE INDEX ix_filedownloadlog_usagelog_id ON filedownloadlog (usagelog_id);
CREATE INDEX ix_filedownloadlog_diskfile_filename ON filedownloadlog (diskfile_filename);
CREATE INDEX ix_filedownloadlog_ut_datetime ON filedownloadlog (ut_datetime);
CREATE INDEX ix_fileuploadlog_usagelog_id ON fileuploadlog (usagelog_id);
CREATE INDEX ix_fileuploadlog_ut_transfer_start ON fileuploadlog (ut_transfer_start);
CREATE INDEX ix_fileuploadlog_filename ON fileuploadlog (filename);
CREATE UNIQUE INDEX ix_file_name ON file (name);
CREATE INDEX ix_diskfile_file_id ON diskfile (file_id);
CREATE INDEX ix_diskfile_present ON diskfile (present);
CREATE INDEX ix_header_diskfile_id ON header (diskfile_id);
`;

/** The whole v2 schema: tables and sequences, then foreign keys and indexes. */
export const PREVIOUS_VERSION_SCHEMA_SQL = `${TABLES_SQL}\n${INDEXES_SQL}`;

export interface PreviousVersionOptions {
  /** archiveuser rows before the hand-written ones; default usagelogRows/500, at least 20, at most 50 000. */
  users?: number;
  /** Bulk usagelog rows (at least 100); the child logs are proportionate. Default 20 000. */
  usagelogRows?: number;
  /** qareport rows; each gets an IQ, SB and ZP metric, every second one a PE metric. Default 2 000. */
  qaReports?: number;
  /** Any integer 0 … 2^31-2; the same seed gives the same rows. Default 1. */
  seed?: number;
  /** Called after each step with its name and duration, for benchmarks. */
  onStep?: (step: string, ms: number) => void;
}

export interface SequenceSummary {
  name: string;
  lastValue: number;
  isCalled: boolean;
  /** "table.column" for a SERIAL (OWNED BY) sequence; null for an unowned one. */
  ownedBy: string | null;
}

export interface TableSummary {
  rows: number;
  maxId: number | null;
  /** Sequences that the table's column defaults call (pg_attrdef → pg_depend). */
  sequences: SequenceSummary[];
}

export interface PreviousVersionSummary {
  seed: number;
  usagelogRows: number;
  users: number;
  qaReports: number;
  tables: Record<PreviousVersionTable, TableSummary>;
  otherTables: readonly string[];
}

/**
 * Texts that a dump/restore or COPY path must carry over unchanged. Each one
 * is stored in several text columns of the hand-written rows (`long` only in
 * columns without an index).
 */
export const EDGE_TEXTS = {
  quotes: `O'Brien said "it's ''fine''"`,
  backslashes: "C:\\data\\raw\\N20200127S0023.fits",
  backslashN: "\\N",
  trailingBackslash: "ends with a backslash\\",
  copyEndMarker: "line one\n\\.\nline three",
  tabs: "col1\tcol2\t\tcol4\t",
  newlines: "first line\r\nsecond line\nthird line\rend\n",
  nonAscii: "Zoë Ångström, café — 日本語のテキスト 🔭🌌",
  empty: "",
  sqlInjection: "'); DROP TABLE usagelog; --",
  long: longText(),
} as const;

export type EdgeTextKey = keyof typeof EDGE_TEXTS;

function longText(): string {
  const sentence =
    "Seeing 0.45\" in r' — GN-2019B-Q-1 \\ N20200127S0023.fits\tIQ70 ✓ 日本\n";
  let text = "";
  for (let i = 0; text.length < 100_000; i++) {
    text += `${i}: ${sentence}`;
  }
  return text;
}

/**
 * Timestamps at PostgreSQL's limits (4713 BC … 294276 AD, ±infinity), some
 * beyond what JavaScript's Date can hold, and with microseconds.
 */
export const EDGE_TIMESTAMPS = [
  "4713-01-01 00:00:00 BC",
  "0001-01-01 00:00:00",
  "1999-12-31 23:59:59.999999",
  "2016-02-29 12:00:00.000001",
  "294276-12-31 23:59:59.999999",
  "infinity",
  "-infinity",
] as const;

const DEFAULT_USAGELOG_ROWS = 20_000;
const DEFAULT_QA_REPORTS = 2_000;
const PRIME = 2_147_483_647; // 2^31 - 1
const USER_GAP = "% 53 = 17"; // bulk archiveuser ids deleted after the load

interface Counts {
  seed: number;
  usagelog: number;
  users: number;
  userprogram: number;
  notification: number;
  glacier: number;
  querylog: number;
  downloadlog: number;
  filedownloadlog: number;
  fileuploadlog: number;
  qareport: number;
}

function wholeNumber(
  value: number | undefined,
  fallback: number,
  name: string,
  min: number,
  max: number,
): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw new UsageError(
      `${name} must be a whole number from ${min} to ${max}, not ${v}`,
    );
  }
  return v;
}

function counts(options: PreviousVersionOptions): Counts {
  const usagelog = wholeNumber(
    options.usagelogRows,
    DEFAULT_USAGELOG_ROWS,
    "usagelogRows",
    100,
    100_000_000,
  );
  const users = wholeNumber(
    options.users,
    Math.min(50_000, Math.max(20, Math.round(usagelog / 500))),
    "users",
    20,
    10_000_000,
  );
  return {
    seed: wholeNumber(options.seed, 1, "seed", 0, PRIME - 1),
    usagelog,
    users,
    userprogram: 2 * users,
    notification: 40,
    glacier: Math.max(10, Math.round(usagelog / 20)),
    querylog: Math.round(usagelog * 0.3),
    downloadlog: Math.round(usagelog * 0.05),
    filedownloadlog: Math.round(usagelog * 0.2),
    fileuploadlog: Math.max(1, Math.round(usagelog * 0.01)),
    qareport: wholeNumber(
      options.qaReports,
      DEFAULT_QA_REPORTS,
      "qaReports",
      10,
      10_000_000,
    ),
  };
}

// ---------------------------------------------------------------------------
// SQL expression builders for the bulk rows. All arithmetic stays below 2^63.

/** A SQL string literal (standard_conforming_strings: only quotes need doubling). */
function lit(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** `(ARRAY[…])[1 + (index % n)]`: keep the lists short, subscripting walks them. */
function pick(items: readonly string[], index: string): string {
  return `(ARRAY[${items.map(lit).join(",")}])[1 + ((${index}) % ${items.length})]`;
}

/** The share of rows (out of `of`) for which this is true, chosen by hash. */
function share(hash: string, n: number, of: number): string {
  return `((${hash}) % ${of} < ${n})`;
}

class Gen {
  constructor(private readonly seed: number) {}

  /** A deterministic pseudo-random integer in [0, 2^31-1) from a row number and a salt. */
  h(i: string, salt: number): string {
    const s = (this.seed * 7919 + salt * 104_729) % PRIME;
    const x = `((((${i})::bigint % ${PRIME}) * 48271 + ${s}) % ${PRIME})`;
    return `((((${x}) # ((${x}) >> 13)) * 16807 + ${salt}) % ${PRIME})`;
  }

  /** A Gemini program id such as GN-2019B-Q-123. */
  program(x: string): string {
    return `('G' || ${pick(["N", "S"], x)} || '-' || (2010 + (${x} / 2) % 13) || ${pick(["A", "B"], `${x} / 26`)} || '-' || ${pick(["Q", "Q", "Q", "Q", "Q", "Q", "C", "DD", "LP", "FT"], `${x} / 52`)} || '-' || (1 + (${x} / 520) % 150))`;
  }

  /** A raw Gemini file name such as N20200127S0023.fits. */
  fileName(x: string): string {
    return `(${pick(["N", "S"], x)} || to_char(date '2010-01-01' + ((${x} / 2) % 4750)::integer, 'YYYYMMDD') || 'S' || lpad((1 + (${x} / 9500) % 1200)::text, 4, '0') || '.fits')`;
  }

  instrument(x: string): string {
    return pick(
      ["GMOS-N", "GMOS-S", "NIRI", "F2", "GNIRS", "GSAOI", "NIFS", "GPI"],
      x,
    );
  }
}

/** Microseconds between bulk usagelog rows, so they span 2016-03 … 2023-02. */
function usageStepUs(rows: number): number {
  const spanUs = 220_000_000 * 1_000_000;
  return Math.floor(spanUs / rows);
}

/** The UT time of usagelog row `id` (children compute it again from their usagelog_id). */
function usageTime(g: Gen, c: Counts, id: string): string {
  const step = usageStepUs(c.usagelog);
  return `(timestamp '2016-03-01 00:00:00' + ((${id})::bigint * ${step} + ${g.h(id, 900)} % ${step}) * interval '1 microsecond')`;
}

/** A bulk user id that survives the USER_GAP delete. */
function userRef(c: Counts, hash: string): string {
  const x = `(1 + (${hash}) % ${c.users - 1})`;
  return `(${x} + (${x} ${USER_GAP})::integer)`;
}

/** The usagelog row that child row `j` of `n` belongs to: spread evenly over the log. */
function usageRef(c: Counts, j: string, n: number): string {
  return `((((${j})::bigint - 1) * ${c.usagelog}) / ${n} + 1)`;
}

/** `INSERT … SELECT` over generate_series, with per-row hashes computed once (OFFSET 0). */
function bulk(
  g: Gen,
  table: string,
  n: number,
  hashes: number,
  columns: Record<string, string>,
): string {
  // Salts differ per table, so tables of equal size get unrelated values.
  const base = [...table].reduce(
    (a, ch) => (a * 31 + ch.charCodeAt(0)) % 9973,
    7,
  );
  const hs = Array.from(
    { length: hashes },
    (_, k) => `${g.h("i", base * 16 + k + 1)} AS h${k}`,
  );
  const names = Object.keys(columns);
  return `INSERT INTO ${table} (${names.join(", ")})
SELECT ${names.map((k) => columns[k]).join(",\n  ")}
FROM (SELECT i${hs.length > 0 ? ", " : ""}${hs.join(", ")} FROM generate_series(1, ${n}) AS s(i) OFFSET 0) AS r`;
}

const FIRST_NAMES = [
  "Maria",
  "James",
  "Zoë",
  "José",
  "Wei",
  "Aroha",
  "Søren",
  "Priya",
  "Kenji",
  "Fatima",
];
const LAST_NAMES = [
  "Smith",
  "Garcia",
  "Chen",
  "Okafor",
  "Nakamura",
  "Silva",
  "Muller",
  "Kaur",
  "Walker",
  "Rossi",
  "Nguyen",
];
const USER_AGENTS = [
  "Mozilla/5.0 (X11; Linux x86_64; rv:85.0) Gecko/20100101 Firefox/85.0",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/14.0.3 Safari/605.1.15",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/88.0.4324.150 Safari/537.36",
  "python-requests/2.25.1",
  "astroquery/0.4.1",
  "curl/7.68.0",
  "Wget/1.20.3 (linux-gnu)",
  "Python-urllib/3.8",
];
const THIS = [
  "searchform",
  "searchform",
  "searchform",
  "searchform",
  "searchform",
  "searchform",
  "summary",
  "summary",
  "summary",
  "jsonsummary",
  "jsonsummary",
  "file",
  "file",
  "download",
  "fullheader",
  "calmgr",
  "upload_file",
  "login",
  "qareport",
  "preview",
];

function bulkSql(c: Counts): string[] {
  const g = new Gen(c.seed);
  const statements: string[] = [];

  statements.push(
    bulk(g, "archiveuser", c.users, 6, {
      id: "i",
      orcid_id: `CASE WHEN ${share("h0", 3, 10)} THEN '0000-000' || (h1 % 10) || '-' || lpad((h1 / 10 % 10000)::text, 4, '0') || '-' || lpad((h2 % 1000)::text, 3, '0') || ${pick(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "X"], "h2 / 1000")} END`,
      username: `lower(${pick(LAST_NAMES, "h3")}) || i`,
      fullname: `CASE WHEN h0 % 20 <> 7 THEN ${pick(FIRST_NAMES, "h4")} || ' ' || ${pick(LAST_NAMES, "h3")} END`,
      password: `CASE WHEN h5 % 8 <> 0 THEN encode(sha256(convert_to('pw:' || i || ':' || h5, 'UTF8')), 'hex') END`,
      salt: `CASE WHEN h5 % 8 <> 0 THEN replace(encode(sha256(convert_to('salt:' || i, 'UTF8')) || sha256(convert_to('salt2:' || h5, 'UTF8')), 'base64'), E'\\n', '') END`,
      email: `CASE WHEN h0 % 25 <> 3 THEN lower(${pick(LAST_NAMES, "h3")}) || i || '@' || ${pick(["gemini.edu", "noirlab.edu", "example.org", "uni-heidelberg.de", "astro.ufrj.br", "nao.ac.jp"], "h4 / 10")} END`,
      gemini_staff: "(h1 % 15 = 0)",
      misc_upload: "(h2 % 40 = 0)",
      user_admin: "(h4 % 200 = 0)",
      superuser: "(h5 % 500 = 1)",
      reset_token: `CASE WHEN h1 % 50 = 1 THEN upper(substr(encode(sha256(convert_to('reset:' || i, 'UTF8')), 'hex'), 1, 56)) END`,
      reset_token_expires: `CASE WHEN h1 % 50 = 1 THEN timestamp '2016-03-01' + (i * 3600 + h1 % 3600) * interval '1 second' + interval '15 minutes' END`,
      cookie: `CASE WHEN h2 % 3 = 0 THEN replace(encode(sha256(convert_to('c1:' || i || h2, 'UTF8')) || sha256(convert_to('c2:' || i, 'UTF8')) || sha256(convert_to('c3:' || h2, 'UTF8')), 'base64'), E'\\n', '') END`,
      account_created: `timestamp '2016-03-01' + (i * 3600 + h1 % 3600) * interval '1 second'`,
      password_changed: `CASE WHEN h5 % 8 <> 0 THEN timestamp '2016-03-01' + (i * 3600 + h1 % 3600) * interval '1 second' + (h3 % 900) * interval '1 day' END`,
    }),
  );

  statements.push(
    bulk(g, "userprogram", c.userprogram, 3, {
      id: "i",
      user_id: userRef(c, "h0"),
      program_id: `CASE WHEN h1 % 10 < 6 THEN ${g.program("h2")} END`,
      observation_id: `CASE WHEN h1 % 10 IN (6, 7) THEN ${g.program("h2")} || '-' || (1 + h1 / 10 % 60) END`,
      filename: `CASE WHEN h1 % 10 >= 8 THEN ${g.fileName("h2")} END`,
      // v2 stores '' for a file grant without a path "so naive concats work later".
      path: `CASE WHEN h1 % 10 >= 8 THEN '' END`,
    }),
  );

  statements.push(
    bulk(g, "notification", c.notification, 3, {
      id: "i",
      label: `${g.instrument("h0")} || ' notification ' || i`,
      selection: `${g.program("h1")} || ' ' || ${g.instrument("h0")}`,
      piemail: `'pi' || i || '@' || ${pick(["example.org", "uni-heidelberg.de", "astro.ufrj.br"], "h2")}`,
      ngoemail: `CASE WHEN h2 % 4 <> 0 THEN 'ngo' || (h2 % 7) || '@example.org' END`,
      csemail: `'cs' || (h1 % 5) || '@gemini.edu'`,
      internal: "(h2 % 9 = 0)",
    }),
  );

  statements.push(
    bulk(g, "glacier", c.glacier, 2, {
      id: "i",
      filename: `${g.fileName("h0")} || ${pick([".bz2", "", ".bz2", ".bz2"], "h1")}`,
      md5: `md5('glacier:' || i || ':' || h0)`,
      when_uploaded: `timestamp '2016-03-01' + (i::bigint * ${Math.floor(220_000_000 / c.glacier)} + h1 % 1000) * interval '1 second'`,
      last_inventory: `CASE WHEN h1 % 10 <> 0 THEN timestamp '2023-01-15 03:00:00' + (h1 % 86400) * interval '1 second' END`,
    }),
  );

  const kind = "h0 % 20";
  statements.push(
    bulk(g, "usagelog", c.usagelog, 7, {
      id: "i",
      utdatetime: usageTime(g, c, "i"),
      user_id: `CASE WHEN ${share("h1", 2, 5)} THEN ${userRef(c, "h1 / 5")} END`,
      ip_address: `CASE WHEN h2 % 50 = 0 THEN '2001:db8:' || to_hex(h2 / 50 % 65536) || '::' || to_hex(h2 / 3276800 % 65536) ELSE ${pick(["192.0.2", "198.51.100", "203.0.113", "10.1.1", "172.16.5"], "h2")} || '.' || (1 + (h2 / 5) % 254) END`,
      user_agent: `CASE WHEN h3 % 40 <> 0 THEN ${pick(USER_AGENTS, "h3 / 40")} END`,
      referer: `CASE h4 % 6 WHEN 0 THEN 'https://archive.gemini.edu/searchform' WHEN 1 THEN 'https://archive.gemini.edu/searchform/' || ${g.program("h5")} WHEN 2 THEN 'https://www.google.com/' WHEN 3 THEN '' END`,
      method: `CASE WHEN ${kind} IN (16, 17, 18) THEN 'POST' WHEN h4 % 97 = 5 THEN 'HEAD' ELSE 'GET' END`,
      uri: `CASE ${kind}
        WHEN 6 THEN '/summary/' || ${g.program("h5")} || '/' || ${g.instrument("h6")}
        WHEN 7 THEN '/summary/' || ${g.program("h5")} || '/' || ${g.instrument("h6")}
        WHEN 8 THEN '/summary/' || ${g.program("h5")}
        WHEN 9 THEN '/jsonsummary/' || ${g.program("h5")}
        WHEN 10 THEN '/jsonsummary/' || ${g.program("h5")} || '/canonical'
        WHEN 11 THEN '/file/' || ${g.fileName("h6")}
        WHEN 12 THEN '/file/' || ${g.fileName("h6")}
        WHEN 13 THEN '/download/' || ${g.program("h5")} || '/notengineering/NotFail'
        WHEN 14 THEN '/fullheader/' || ${g.fileName("h6")}
        WHEN 15 THEN '/calmgr/' || ${g.fileName("h6")}
        WHEN 16 THEN '/upload_file/' || ${g.fileName("h6")}
        WHEN 17 THEN '/login'
        WHEN 18 THEN '/qareport'
        WHEN 19 THEN '/preview/' || ${g.fileName("h6")}
        ELSE '/searchform/' || ${g.program("h5")} || ${pick(["", "", "/" + "GMOS-N", "/science", "/20200127"], "h6")}
      END`,
      this: pick(THIS, kind),
      bytes: `CASE WHEN h3 % 1000 <> 999 THEN (h5 % 5000000)::bigint * (1 + (${kind} = 13)::integer * 999) END`,
      status: `CASE WHEN h3 % 1000 <> 999 THEN (ARRAY[200,200,200,200,200,200,200,200,200,200,200,200,200,200,303,403,404,404,500,499])[1 + h4 % 20] END`,
      notes: `CASE WHEN h6 % 200 = 1 THEN 'Invalid selection: ' || ${g.program("h5")} || E'\\n' || 'Search aborted' WHEN h6 % 200 = 2 THEN 'Client closed connection' END`,
    }),
  );

  const uq = usageRef(c, "i", c.querylog);
  statements.push(
    bulk(g, "querylog", c.querylog, 3, {
      id: "i",
      usagelog_id: uq,
      summarytype: pick(
        [
          "summary",
          "ssummary",
          "lsummary",
          "diskfiles",
          "searchresults",
          "associated_cals",
          "jsonsummary",
          "jsonfilelist",
        ],
        "h0",
      ),
      selection: `'{''program_id'': ''' || ${g.program("h1")} || ''', ''inst'': ''' || ${g.instrument("h2")} || '''' || CASE WHEN h2 % 3 = 0 THEN ', ''date'': ''' || to_char(date '2016-03-01' + (h1 % 2500)::integer, 'YYYYMMDD') || '''' ELSE '' END || '}'`,
      numresults: "h2 % 500",
      numcalresults: "CASE WHEN h0 % 8 = 5 THEN h1 % 60 END",
      query_started: `${usageTime(g, c, uq)} + interval '3 milliseconds'`,
      query_completed: `CASE WHEN h0 % 100 <> 0 THEN ${usageTime(g, c, uq)} + (20 + h2 % 4000) * interval '1 millisecond' END`,
      cals_completed: `CASE WHEN h0 % 8 = 5 THEN ${usageTime(g, c, uq)} + (5000 + h1 % 9000) * interval '1 millisecond' END`,
      summary_completed: `CASE WHEN h0 % 100 <> 0 THEN ${usageTime(g, c, uq)} + (4100 + h2 % 9000) * interval '1 millisecond' END`,
      notes: `CASE WHEN h0 % 100 = 0 THEN 'Query timed out' END`,
    }),
  );

  const ud = usageRef(c, "i", c.downloadlog);
  statements.push(
    bulk(g, "downloadlog", c.downloadlog, 3, {
      id: "i",
      usagelog_id: ud,
      selection: `'{''program_id'': ''' || ${g.program("h1")} || ''', ''engineering'': False, ''qa_state'': ''NotFail''}'`,
      numresults: "1 + h0 % 400",
      sending_files: "(h0 % 30 <> 0)",
      numdenied: "CASE WHEN h2 % 5 = 0 THEN h2 % 40 ELSE 0 END",
      query_started: `${usageTime(g, c, ud)} + interval '2 milliseconds'`,
      query_completed: `${usageTime(g, c, ud)} + (50 + h1 % 3000) * interval '1 millisecond'`,
      download_completed: `CASE WHEN h2 % 20 <> 0 THEN ${usageTime(g, c, ud)} + (4000 + h1 % 600000) * interval '1 millisecond' END`,
      notes: `CASE WHEN h2 % 20 = 0 THEN 'Download aborted by client' END`,
    }),
  );

  const uf = usageRef(c, "i", c.filedownloadlog);
  statements.push(
    bulk(g, "filedownloadlog", c.filedownloadlog, 3, {
      id: "i",
      usagelog_id: uf,
      diskfile_filename: `${g.fileName("h0")} || '.bz2'`,
      diskfile_file_md5: `md5(${g.fileName("h0")})`,
      // Some GHOST/IGRINS-size files exceed 2^31 bytes.
      diskfile_file_size: `CASE WHEN h1 % 50 = 0 THEN 2147483648 + h2::bigint ELSE 200000 + h2 % 60000000 END`,
      ut_datetime: `${usageTime(g, c, uf)} + interval '1 second'`,
      released: "(h1 % 4 <> 0)",
      pi_access: "(h1 % 4 = 0 AND h2 % 3 <> 0)",
      staff_access: "(h2 % 17 = 0)",
      magic_access: "(h2 % 101 = 0)",
      eng_access: "(h1 % 61 = 0)",
      canhaveit: "(h1 % 4 <> 0 OR h2 % 3 <> 0)",
      notes: `CASE WHEN h1 % 4 = 0 AND h2 % 3 = 0 THEN 'Not released, no PI or staff access' END`,
    }),
  );

  const uu = usageRef(c, "i", c.fileuploadlog);
  statements.push(
    bulk(g, "fileuploadlog", c.fileuploadlog, 3, {
      id: "i",
      usagelog_id: uu,
      ut_transfer_start: `${usageTime(g, c, uu)} + interval '1 millisecond'`,
      ut_transfer_complete: `${usageTime(g, c, uu)} + (200 + h0 % 60000) * interval '1 millisecond'`,
      filename: g.fileName("h1"),
      size: "100000 + h2 % 2000000000",
      md5: `md5('upload:' || i || ':' || h1)`,
      processed_cal: "(h0 % 7 = 0)",
      invoke_status: "CASE WHEN h0 % 25 <> 0 THEN 0 END",
      invoke_pid: "CASE WHEN h0 % 25 <> 0 THEN 1000 + h1 % 31000 END",
      destination: `CASE WHEN h2 % 10 <> 0 THEN ${pick(["/sci/dataflow", "s3://gemini-archive"], "h2")} END`,
      s3_ut_start: `CASE WHEN h2 % 2 = 1 THEN ${usageTime(g, c, uu)} + (60500 + h0 % 1000) * interval '1 millisecond' END`,
      s3_ut_end: `CASE WHEN h2 % 2 = 1 AND h0 % 50 <> 0 THEN ${usageTime(g, c, uu)} + (62000 + h0 % 90000) * interval '1 millisecond' END`,
      s3_ok: "CASE WHEN h2 % 2 = 1 THEN h0 % 50 <> 0 END",
      file_ok: "(h1 % 40 <> 0)",
      ingestqueue_id: "CASE WHEN h1 % 40 <> 0 THEN 3 * i + h0 % 3 END",
      notes: `CASE WHEN h1 % 40 = 0 THEN 'File failed verification' END`,
    }),
  );

  const submit = `timestamp '2016-03-01' + (i::bigint * ${Math.floor(220_000_000 / c.qareport)} + h0 % 600) * interval '1 second'`;
  statements.push(
    bulk(g, "qareport", c.qareport, 2, {
      id: "i",
      hostname: pick(
        ["hbfdrpipe1", "cpodrpipe1", "hbfdrpipe2", "cpodrpipe2"],
        "h0",
      ),
      userid: pick(["dataproc", "gmosqa", "dataproc", "niriqa"], "h1"),
      processid: "1000 + h1 % 60000",
      executable: pick(["reduce", "reduce_qap"], "h1"),
      software: "'QAP'",
      software_version: pick(["2.0.6", "2.1.1", "3.0.0"], "h0"),
      context: pick(["QA", "QA", "SQ"], "h1"),
      submit_time: submit,
      submit_host: pick(
        ["hbfdrpipe1.hi.gemini.edu", "cpodrpipe1.cl.gemini.edu"],
        "h0",
      ),
    }),
  );

  const metric = (
    table: string,
    n: number,
    every: number,
    cols: Record<string, string>,
  ): string =>
    bulk(g, table, n, 3, {
      id: "i",
      qareport_id: `(i - 1) * ${every} + 1`,
      datalabel: `${g.program("h0")} || '-' || (1 + h1 % 40) || '-' || lpad((1 + h2 % 300)::text, 3, '0')`,
      filename: `${g.fileName("h0")}`,
      detector: pick(
        ["EEV9273-16-03", "e2v DD ccd42-90", "Hamamatsu", "ALADDIN"],
        "h1",
      ),
      ...cols,
      nsamples: "1 + h2 % 200",
    });
  statements.push(
    metric("qametriciq", c.qareport, 1, {
      fwhm: "(h1 % 2500)::numeric / 1000",
      fwhm_std: "(h2 % 300)::numeric / 1000",
      isofwhm: "(h1 % 2600)::numeric / 1000",
      isofwhm_std: "(h2 % 310)::numeric / 1000",
      ee50d: "(h1 % 3000)::numeric / 1000",
      ee50d_std: "(h2 % 400)::numeric / 1000",
      elip: "(h0 % 300)::numeric / 1000",
      elip_std: "(h0 % 50)::numeric / 1000",
      pa: "(h2 % 360000)::numeric / 1000 - 180",
      pa_std: "(h1 % 20000)::numeric / 1000",
      adaptive_optics: "(h0 % 10 = 0)",
      ao_seeing: "CASE WHEN h0 % 10 = 0 THEN (h1 % 1500)::numeric / 1000 END",
      strehl: "CASE WHEN h0 % 10 = 0 THEN (h2 % 600)::numeric / 1000 END",
      strehl_std: "CASE WHEN h0 % 10 = 0 THEN (h2 % 50)::numeric / 1000 END",
      percentile_band: pick(["IQ20", "IQ70", "IQ85", "IQAny"], "h2"),
      comment: pick(
        ["", "", "", "High ellipticity", "Not enough sources"],
        "h1",
      ),
    }),
  );
  statements.push(
    metric("qametricpe", Math.ceil(c.qareport / 2), 2, {
      dra: "(h1 % 20000)::numeric / 1000 - 10",
      dra_std: "(h2 % 2000)::numeric / 1000",
      ddec: "(h2 % 20000)::numeric / 1000 - 10",
      ddec_std: "(h1 % 2000)::numeric / 1000",
      astref: pick(["SDSS9", "2MASS", "UCAC4", "GAIA DR2"], "h0"),
      comment: pick(["", "", "Large pointing offset"], "h1"),
    }),
  );
  statements.push(
    metric("qametricsb", c.qareport, 1, {
      mag: "17 + (h1 % 5000)::numeric / 1000",
      mag_std: "(h2 % 300)::numeric / 1000",
      electrons: "(h1 % 900000000)::numeric / 100",
      electrons_std: "(h2 % 9000000)::numeric / 100",
      percentile_band: pick(["SB20", "SB50", "SB80", "SBAny"], "h2"),
      comment: pick(["", "", "Bright sky"], "h0"),
    }),
  );
  statements.push(
    metric("qametriczp", c.qareport, 1, {
      mag: "27 + (h1 % 2000)::numeric / 1000",
      mag_std: "(h2 % 100)::numeric / 1000",
      cloud: "(h1 % 1500)::numeric / 1000 - 0.2",
      cloud_std: "(h2 % 200)::numeric / 1000",
      photref: pick(["SDSS9", "APASS", "2MASS"], "h0"),
      percentile_band: pick(["CC50", "CC70", "CC80", "CCAny"], "h2"),
      comment: pick(["", "", "Variable cloud"], "h0"),
    }),
  );

  // The non-preserved trio: a handful of rows.
  statements.push(
    bulk(g, "file", 5, 0, {
      id: "i",
      name: "'N20200127S' || lpad(i::text, 4, '0') || '.fits'",
    }),
    bulk(g, "diskfile", 5, 1, {
      id: "i",
      file_id: "i",
      filename: "'N20200127S' || lpad(i::text, 4, '0') || '.fits.bz2'",
      path: "''",
      present: "true",
      canonical: "true",
      file_md5: `md5('diskfile' || i)`,
      file_size: "100000 + h0 % 9000000",
      lastmod: `timestamptz '2020-01-27 10:00:00+00' + i * interval '1 hour'`,
      entrytime: `timestamptz '2020-01-27 12:00:00+00' + i * interval '1 hour'`,
    }),
    bulk(g, "header", 5, 1, {
      id: "i",
      diskfile_id: "i",
      program_id: g.program("h0"),
      observation_id: `${g.program("h0")} || '-1'`,
      data_label: `${g.program("h0")} || '-1-' || lpad(i::text, 3, '0')`,
      telescope: `(${pick(["Gemini-North", "Gemini-South"], "h0")})::telescope`,
      instrument: g.instrument("h0"),
      ut_datetime: `timestamp '2020-01-27 10:00:00' + i * interval '1 hour'`,
    }),
  );
  return statements;
}

// ---------------------------------------------------------------------------
// Hand-written rows.

type Row = Record<string, unknown>;

async function insert(
  client: ClientBase,
  table: string,
  row: Row,
): Promise<number> {
  const names = Object.keys(row);
  const sql =
    names.length === 0
      ? `INSERT INTO ${quoteIdent(table)} DEFAULT VALUES RETURNING id`
      : `INSERT INTO ${quoteIdent(table)} (${names.map((n) => quoteIdent(n)).join(", ")}) VALUES (${names.map((_, k) => `$${k + 1}`).join(", ")}) RETURNING id`;
  const { rows } = await client.query<{ id: number }>(sql, Object.values(row));
  const id = rows[0]?.id;
  if (id === undefined) {
    throw new Error(`INSERT INTO ${table} returned no id`);
  }
  return id;
}

async function insertEdgeRows(client: ClientBase): Promise<void> {
  // One row per table with every nullable column NULL.
  const nullUser = await insert(client, "archiveuser", {
    username: "edge_all_null",
  });
  const nullUsage = await insert(client, "usagelog", {});
  for (const t of [
    "querylog",
    "downloadlog",
    "filedownloadlog",
    "fileuploadlog",
  ]) {
    await insert(client, t, { usagelog_id: nullUsage });
  }
  await insert(client, "userprogram", { user_id: nullUser });
  await insert(client, "notification", {});
  await insert(client, "glacier", {
    filename: "S20191231S0001.fits.bz2",
    md5: "d41d8cd98f00b204e9800998ecf8427e",
  });
  await insert(client, "qareport", {});
  for (const t of ["qametriciq", "qametricpe", "qametricsb", "qametriczp"]) {
    await insert(client, t, {}); // qareport_id NULL too
  }

  // Every edge text in the text columns of a group of rows.
  for (const [key, text] of Object.entries(EDGE_TEXTS)) {
    const long = key === "long";
    // Columns indexed in v2 or v3 get a stand-in: btree entries hold at most ~2.7 kB.
    const indexed = long ? `edge_${key}` : text;
    const user = await insert(client, "archiveuser", {
      username: `edge_${key}`,
      orcid_id: key === "nonAscii" ? "0000-0002-1825-0097" : null,
      fullname: text,
      password: text,
      salt: text,
      email: key === "empty" ? "" : `edge.${key}@example.org`,
      gemini_staff: key === "quotes",
      misc_upload: null,
      user_admin: false,
      superuser: null,
      reset_token: text,
      cookie: long ? null : text,
    });
    await insert(client, "userprogram", {
      user_id: user,
      program_id: long ? null : text,
      filename: long ? null : text,
      path: indexed,
    });
    const usage = await insert(client, "usagelog", {
      utdatetime: "2020-01-27 10:11:12.131415",
      user_id: user,
      ip_address: indexed,
      user_agent: text,
      referer: text,
      method: "GET",
      uri: `/searchform/${text}`,
      this: indexed,
      bytes: 0,
      status: 200,
      notes: text,
    });
    await insert(client, "querylog", {
      usagelog_id: usage,
      summarytype: indexed,
      selection: text,
      notes: text,
    });
    await insert(client, "downloadlog", {
      usagelog_id: usage,
      selection: text,
      notes: text,
    });
    await insert(client, "filedownloadlog", {
      usagelog_id: usage,
      diskfile_filename: indexed,
      diskfile_file_md5: text,
      notes: text,
    });
    await insert(client, "fileuploadlog", {
      usagelog_id: usage,
      filename: indexed,
      md5: text,
      destination: text,
      notes: text,
    });
    await insert(client, "notification", {
      label: text,
      selection: text,
      piemail: text,
    });
    await insert(client, "glacier", { filename: indexed, md5: indexed });
    const report = await insert(client, "qareport", {
      hostname: text,
      context: text,
    });
    await insert(client, "qametriciq", {
      qareport_id: report,
      datalabel: indexed, // indexed in v3
      filename: text,
      comment: text,
    });
    await insert(client, "qametricpe", {
      qareport_id: report,
      astref: text,
      comment: text,
    });
    await insert(client, "qametricsb", {
      qareport_id: report,
      comment: text,
    });
    await insert(client, "qametriczp", {
      qareport_id: report,
      photref: text,
      comment: text,
    });
  }

  // Timestamps beyond what a JavaScript Date holds, in several columns.
  for (const ts of EDGE_TIMESTAMPS) {
    const user = await insert(client, "archiveuser", {
      username: `edge_time_${ts}`,
      reset_token_expires: ts,
      account_created: ts,
      password_changed: ts,
    });
    const usage = await insert(client, "usagelog", {
      utdatetime: ts,
      user_id: user,
      uri: "/searchform/GN-2019B-Q-1",
    });
    await insert(client, "querylog", {
      usagelog_id: usage,
      query_started: ts,
      summary_completed: ts,
    });
    await insert(client, "filedownloadlog", {
      usagelog_id: usage,
      ut_datetime: ts,
    });
    await insert(client, "fileuploadlog", {
      usagelog_id: usage,
      ut_transfer_start: ts,
      s3_ut_end: ts,
    });
    await insert(client, "glacier", {
      filename: "N20200127S0023.fits.bz2",
      md5: "0cc175b9c0f1b6a831c399e269772661",
      when_uploaded: ts,
    });
    await insert(client, "qareport", { submit_time: ts });
  }

  // Integer and numeric limits.
  const big = await insert(client, "usagelog", {
    uri: "/download/GS-2022A-LP-101",
    bytes: "9223372036854775807",
    status: 2147483647,
  });
  await insert(client, "usagelog", {
    uri: "/file/N20200127S0023.fits",
    bytes: "-9223372036854775808",
    status: -2147483648,
  });
  await insert(client, "querylog", {
    usagelog_id: big,
    numresults: 2147483647,
    numcalresults: -2147483648,
  });
  await insert(client, "downloadlog", {
    usagelog_id: big,
    numresults: 0,
    numdenied: 2147483647,
    sending_files: false,
  });
  await insert(client, "filedownloadlog", {
    usagelog_id: big,
    diskfile_file_size: "9223372036854775807",
  });
  await insert(client, "fileuploadlog", {
    usagelog_id: big,
    size: 2147483647,
    invoke_status: -2147483648,
    invoke_pid: 2147483647,
    ingestqueue_id: 2147483647,
  });
  const report = await insert(client, "qareport", { processid: 2147483647 });
  await insert(client, "qametriciq", {
    qareport_id: report,
    fwhm: "999.999",
    fwhm_std: "-999.999",
    isofwhm: "0.000",
    isofwhm_std: "-0.001",
    ee50d: "0.001",
    ee50d_std: "999.999",
    elip: "99.999",
    elip_std: "-99.999",
    pa: "-180.000",
    pa_std: "359.999",
    adaptive_optics: true,
    ao_seeing: "0.001",
    strehl: "-999.999",
    strehl_std: "999.999",
    nsamples: -2147483648,
  });
  await insert(client, "qametricpe", {
    qareport_id: report,
    dra: "999999.999",
    dra_std: "-999999.999",
    ddec: "-0.001",
    ddec_std: "0.000",
    nsamples: 2147483647,
  });
  await insert(client, "qametricsb", {
    qareport_id: report,
    mag: "-99.999",
    mag_std: "99.999",
    electrons: "9999999.99",
    electrons_std: "-99999.99",
  });
  await insert(client, "qametriczp", {
    qareport_id: report,
    mag: "99.999",
    mag_std: "0.000",
    cloud: "-99.999",
    cloud_std: "0.001",
  });
}

// ---------------------------------------------------------------------------

/** Row gaps of a real server: deleted accounts, pruned logs, rolled-back inserts. */
function gapSql(c: Counts): string[] {
  const half = Math.floor(c.usagelog / 2);
  const usageGap = (id: string): string =>
    `(${id} % 1009 = 500 OR ${id} BETWEEN ${half} AND ${half + 99}) AND ${id} <= ${c.usagelog}`;
  return [
    ...["querylog", "downloadlog", "filedownloadlog", "fileuploadlog"].map(
      (t) => `DELETE FROM ${t} WHERE ${usageGap("usagelog_id")}`,
    ),
    `DELETE FROM usagelog WHERE ${usageGap("id")}`,
    `DELETE FROM archiveuser WHERE id <= ${c.users} AND id ${USER_GAP}`,
    `DELETE FROM userprogram WHERE id <= ${c.userprogram} AND id % 89 = 1`,
    `DELETE FROM querylog WHERE id <= ${c.querylog} AND id % 997 = 3`,
    `DELETE FROM filedownloadlog WHERE id <= ${c.filedownloadlog} AND id % 991 = 7`,
    `DELETE FROM glacier WHERE id <= ${c.glacier} AND id % 101 = 50`,
    `DELETE FROM notification WHERE id IN (5, 6, 7)`,
    ...["qametriciq", "qametricpe", "qametricsb", "qametriczp"].map(
      (t) =>
        `DELETE FROM ${t} WHERE qareport_id <= ${c.qareport} AND qareport_id % 211 = 7`,
    ),
    `DELETE FROM qareport WHERE id <= ${c.qareport} AND id % 211 = 7`,
  ];
}

/** The sequences that `table`'s column defaults call, found in the catalog. */
async function defaultSequences(
  client: ClientBase,
  table: string,
): Promise<SequenceSummary[]> {
  const { rows } = await client.query<{
    name: string;
    owned_by: string | null;
  }>(
    `SELECT DISTINCT s.relname AS name,
            (SELECT t.relname || '.' || a.attname
               FROM pg_depend o
               JOIN pg_class t ON t.oid = o.refobjid
               JOIN pg_attribute a ON a.attrelid = o.refobjid AND a.attnum = o.refobjsubid
              WHERE o.classid = 'pg_class'::regclass AND o.objid = s.oid
                AND o.refclassid = 'pg_class'::regclass AND o.deptype IN ('a', 'i')) AS owned_by
       FROM pg_attrdef ad
       JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
                       AND d.refclassid = 'pg_class'::regclass
       JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'
      WHERE ad.adrelid = $1::regclass
      ORDER BY 1`,
    [`public.${table}`],
  );
  const out: SequenceSummary[] = [];
  for (const r of rows) {
    const state = await client.query<{
      last_value: string;
      is_called: boolean;
    }>(`SELECT last_value, is_called FROM public.${quoteIdent(r.name)}`);
    const s = state.rows[0];
    if (s === undefined) {
      throw new Error(`sequence ${r.name} has no state row`);
    }
    out.push({
      name: r.name,
      lastValue: safeNumber(s.last_value),
      isCalled: s.is_called,
      ownedBy: r.owned_by,
    });
  }
  return out;
}

function safeNumber(value: string | number): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) {
    throw new Error(`${value} does not fit a JavaScript number`);
  }
  return n;
}

/** Row count, max(id) and sequence state of every preserved v2 table. */
export async function summarisePreviousVersion(
  client: ClientBase,
): Promise<Record<PreviousVersionTable, TableSummary>> {
  const tables: Partial<Record<PreviousVersionTable, TableSummary>> = {};
  for (const table of PREVIOUS_VERSION_TABLES) {
    const { rows } = await client.query<{
      rows: string;
      max_id: string | null;
    }>(
      `SELECT count(*) AS rows, max(id) AS max_id FROM public.${quoteIdent(table)}`,
    );
    const r = rows[0];
    tables[table] = {
      rows: safeNumber(r?.rows ?? 0),
      maxId:
        r?.max_id === null || r?.max_id === undefined
          ? null
          : safeNumber(r.max_id),
      sequences: await defaultSequences(client, table),
    };
  }
  return tables as Record<PreviousVersionTable, TableSummary>;
}

/**
 * md5 over a table's rows in id order, each row as its text form: equal
 * fingerprints mean equal contents.
 */
export async function tableFingerprint(
  client: ClientBase,
  table: string,
): Promise<string> {
  const t = quoteIdent(table);
  const { rows } = await client.query<{ md5: string | null }>(
    `SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t.id), '')) AS md5 FROM public.${t} AS t`,
  );
  return rows[0]?.md5 ?? "";
}

/**
 * Creates the v2 schema in the connected database, which must have no tables
 * in `public`, and fills it, all in one transaction. Returns what a migration
 * test compares against: per table the row count, max(id) and sequence state.
 */
export async function createPreviousVersionDatabase(
  client: ClientBase,
  options: PreviousVersionOptions = {},
): Promise<PreviousVersionSummary> {
  const c = counts(options);
  const existing = await client.query<{ relname: string }>(
    "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p', 'v', 'm', 'S') ORDER BY 1 LIMIT 5",
  );
  if (existing.rows.length > 0) {
    throw new PreconditionError(
      `the database is not empty: public already holds ${existing.rows.map((r) => r.relname).join(", ")}`,
      {
        suggestion:
          "create the previous-version fixture in a new, empty database",
      },
    );
  }
  let started = performance.now();
  const step = (name: string): void => {
    const now = performance.now();
    options.onStep?.(name, now - started);
    started = now;
  };
  await client.query("BEGIN");
  try {
    await client.query("SET LOCAL synchronous_commit = off");
    await client.query("SET LOCAL maintenance_work_mem = '256MB'");
    await client.query(TABLES_SQL);
    for (const sql of bulkSql(c)) {
      await client.query(sql);
      step(`load ${/^INSERT INTO (\w+)/.exec(sql)?.[1] ?? "?"}`);
    }
    for (const sql of INDEXES_SQL.split(";\n").filter((s) => s.trim())) {
      await client.query(sql);
    }
    step("foreign keys and indexes");
    // Bulk rows carry explicit ids; move every sequence to max(id) before
    // the hand-written rows take theirs from the column defaults.
    for (const table of [
      ...PREVIOUS_VERSION_TABLES,
      ...PREVIOUS_VERSION_OTHER_TABLES,
    ]) {
      const seq = table === "glacier" ? UNOWNED_SEQUENCE : `${table}_id_seq`;
      await client.query(
        `SELECT setval($1::regclass, (SELECT max(id) FROM public.${quoteIdent(table)}))`,
        [`public.${seq}`],
      );
    }
    await insertEdgeRows(client);
    step("hand-written rows");
    for (const sql of gapSql(c)) {
      await client.query(sql);
    }
    step("id gaps");
    // Sequences ahead of max(id): ids handed out by transactions that rolled
    // back, and one sequence reset by hand to "next value = max + 1".
    await client.query(
      "SELECT setval('usagelog_id_seq', (SELECT max(id) FROM usagelog) + 1000)",
    );
    await client.query(
      "SELECT setval('archiveuser_id_seq', (SELECT max(id) FROM archiveuser) + 7)",
    );
    await client.query(
      "SELECT setval('notification_id_seq', (SELECT max(id) FROM notification) + 1, false)",
    );
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
  step("commit");
  await client.query("ANALYZE");
  step("analyze");
  return {
    seed: c.seed,
    usagelogRows: c.usagelog,
    users: c.users,
    qaReports: c.qareport,
    tables: await summarisePreviousVersion(client),
    otherTables: PREVIOUS_VERSION_OTHER_TABLES,
  };
}

// ---------------------------------------------------------------------------

export type DumpFormat = "custom" | "directory";

export interface DumpOptions {
  /** Default 30 minutes. */
  timeoutMs?: number;
  /** Parallel jobs for the directory format. */
  jobs?: number;
}

/**
 * Dumps a whole database with the system's pg_dump as a client (custom format
 * to a file, directory format to a new folder).
 */
export async function dumpDatabase(
  url: string,
  outPath: string,
  format: DumpFormat,
  options: DumpOptions = {},
): Promise<void> {
  const { dbname, env } = clientProgramConnection(url);
  const jobs =
    format === "directory" && options.jobs !== undefined && options.jobs > 1
      ? ["--jobs", String(options.jobs)]
      : [];
  await run(
    postgresProgram("pg_dump"),
    [
      `--format=${format}`,
      `--file=${outPath}`,
      "--no-password",
      ...jobs,
      `--dbname=${dbname}`,
    ],
    {
      env,
      timeoutMs: options.timeoutMs ?? 30 * 60_000,
      debianPackage: "postgresql-client",
      purpose: `dump the database to ${outPath}`,
    },
  );
}
