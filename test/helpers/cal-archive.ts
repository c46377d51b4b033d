/**
 * A generated calibration archive: header/diskfile/instrument rows for GMOS,
 * NIRI, F2 and GNIRS, built around a few instrument setups per instrument so
 * that most frames have calibrations of their own setup nearby, and a share
 * of every column is nudged off the setup (a near miss: another binning, a
 * wavelength just past the tolerance, a time just outside the window, an
 * older non-canonical version, an engineering or failed-QA frame, a NULL).
 * The same seed gives the same rows.
 */
import { Random } from "../../fixtures/synthetic/random.js";
import {
  fileIds,
  lockFileName,
  supersedeDiskfiles,
  writeDiskfiles,
} from "../../lib/archive-writer.js";
import type { AnyClient } from "../../lib/db/connect.js";
import { HEADER_COLUMN_NAMES, utDatetimeSecs } from "../../lib/gemini/rows.js";
import { typesText } from "../../lib/gemini/tags.js";
import { sortKey } from "../../lib/rebuild/names.js";

type Cell = string | number | boolean | null;
type Domain = Record<string, readonly Cell[]>;

const ARRAYS = "EEV9273-16-03,EEV9273-20-04,EEV9273-20-03";
const AMPS_FULL =
  "'EEV 9273-16-03, right':[1:2048,1:4608]+'EEV 9273-20-04, right':[2049:4096,1:4608]";
const AMP_CENTRE = "'EEV 9273-20-04, right':[2049:4096,1:4608]";

/** Header columns every instrument shares; the first value is the usual one. */
const HEADER: Domain = {
  observation_class: [
    "science",
    "partnerCal",
    "dayCal",
    "progCal",
    "acq",
    "acqCal",
    null,
  ],
  object: ["NGC 1068", "Twilight", "GCALflat", null],
  exposure_time: [300, 1, 1.005, 1.01, 0, 349.999, 350, 250.001, null],
  elevation: [60, 40, 67.5, 74.9, 75, 85, 89, null],
  cass_rotator_pa: [10, 0, 39.9, 40, 69, 71, 180, null],
  detector_roi_setting: [
    "Full Frame",
    "Central Spectrum",
    "Custom",
    "Central Stamp",
    null,
  ],
  detector_binning: ["2x2", "1x1", null],
  coadds: [1, 2, null],
  gcal_lamp: ["IRhigh", "IRlow", "QH", "QH-dummy", "Off", null],
  program_id: ["GN-2019A-Q-1", "GN-CAL20190615", "GS-CAL2019", null],
  observation_id: ["GN-2019A-Q-1-1", "GN-2019A-Q-1-2", null],
  data_label: ["GN2019AQ001-01", "GN-2019A-Q-1-1-001", null],
  phot_standard: [false, true, null],
};

interface InstrumentDomain {
  table: "gmos" | "niri" | "f2" | "gnirs";
  instruments: readonly string[];
  obstypes: readonly string[];
  wavelengths: readonly Cell[];
  tags: readonly string[];
  columns: Domain;
  /** Three setups: changes to the first value of every column, with tags. */
  setups: {
    spectroscopy: boolean;
    inst: Record<string, Cell>;
    tags: string[];
  }[];
}

const INSTRUMENTS: InstrumentDomain[] = [
  {
    table: "gmos",
    instruments: ["GMOS-N", "GMOS-S", "GMOS"],
    obstypes: ["OBJECT", "BIAS", "DARK", "FLAT", "ARC", "MASK", "BPM"],
    wavelengths: [
      0.7,
      0.55,
      0.5,
      0.701,
      0.7009,
      0.699,
      0.715,
      0.7149,
      0.77,
      0.775,
      null,
    ],
    tags: ["LS", "MOS", "IFU", "STANDARD", "SLITILLUM", "PROCESSED_SCIENCE"],
    columns: {
      disperser: [
        "R400+_G5305",
        "MIRROR",
        "B600+_G5307",
        "R150+_G5308",
        "B1200",
        null,
      ],
      filter_name: ["r_G0303", "g_G0301", "open1-6&open2-8", null],
      focal_plane_mask: [
        "1.0arcsec",
        "Imaging",
        "5.0arcsec",
        "0.75arcsec",
        "IFU-R",
        "IFU-2",
        "GN2019AQ001-01",
        null,
      ],
      detector_x_bin: [2, 1, null],
      detector_y_bin: [2, 1, null],
      array_name: [ARRAYS, "e2v 10031-23-05", `${ARRAYS},X`, " ", null],
      amp_read_area: [AMPS_FULL, AMP_CENTRE, null],
      read_speed_setting: ["slow", "fast", null],
      gain_setting: ["low", "high", null],
      nodandshuffle: [false, true, null],
      nod_count: [10, 11, null],
      nod_pixels: [1536, 1537, null],
      prepared: [false, true, null],
      overscan_trimmed: [true, false, null],
      overscan_subtracted: [true, false, null],
    },
    setups: [
      {
        spectroscopy: false,
        inst: {
          disperser: "MIRROR",
          filter_name: "r_G0303",
          focal_plane_mask: "Imaging",
        },
        tags: ["IMAGE"],
      },
      { spectroscopy: true, inst: {}, tags: ["LS", "SPECT"] },
      {
        spectroscopy: true,
        inst: { focal_plane_mask: "GN2019AQ001-01", nodandshuffle: true },
        tags: ["MOS", "SPECT"],
      },
    ],
  },
  {
    table: "niri",
    instruments: ["NIRI"],
    obstypes: ["OBJECT", "DARK", "FLAT", "ARC", "BPM"],
    wavelengths: [2.2, 2.201, 2.2009, 1.65, null],
    tags: ["PROCESSED_SCIENCE"],
    columns: {
      disperser: ["MIRROR", "Jgrism_G5202", "Mgrism_G5206", null],
      filter_name: ["J_G0202", "H_G0203", "Lprime_G0207", "Bra_G0238", null],
      read_mode: ["Low Background", "High Background", null],
      well_depth_setting: ["Shallow", "Deep", null],
      data_section: [
        "Section(x1=0, x2=1024, y1=0, y2=1024)",
        "Section(x1=0, x2=512, y1=0, y2=512)",
        "None",
        null,
      ],
      camera: ["f6", "f32", null],
      focal_plane_mask: ["f6-cam_G5208", "f6-2pix_G5212", null],
    },
    setups: [
      { spectroscopy: false, inst: {}, tags: ["IMAGE"] },
      {
        spectroscopy: false,
        inst: { filter_name: "H_G0203", camera: "f32" },
        tags: ["IMAGE"],
      },
      {
        spectroscopy: true,
        inst: { disperser: "Jgrism_G5202", focal_plane_mask: "f6-2pix_G5212" },
        tags: ["SPECT"],
      },
    ],
  },
  {
    table: "f2",
    instruments: ["F2"],
    obstypes: ["OBJECT", "DARK", "FLAT", "ARC", "BPM"],
    wavelengths: [1.25, 1.251, 1.2509, 2.2, null],
    tags: ["TELLURIC", "STANDARD"],
    columns: {
      disperser: ["JH_G5801", "Open", "HK_G5802", null],
      filter_name: ["JH_G0809", "HK", "K-long", "J", null],
      lyot_stop: ["f/16_G5830", "GEMS_under_G5835", null],
      read_mode: ["8", "1", "4", null],
      focal_plane_mask: ["2pix-slit", "Open", null],
    },
    setups: [
      {
        spectroscopy: false,
        inst: { disperser: "Open", focal_plane_mask: "Open", filter_name: "J" },
        tags: ["IMAGE"],
      },
      { spectroscopy: true, inst: {}, tags: ["LS", "SPECT"] },
      {
        spectroscopy: true,
        inst: { disperser: "HK_G5802", filter_name: "HK" },
        tags: ["LS", "SPECT"],
      },
    ],
  },
  {
    table: "gnirs",
    instruments: ["GNIRS"],
    obstypes: ["OBJECT", "DARK", "FLAT", "ARC", "PINHOLE", "BPM"],
    wavelengths: [2.2, 2.7, 2.8, 4.25, 4.3, 2.201, 1.65, null],
    tags: ["TELLURIC", "STANDARD", "PINHOLE"],
    columns: {
      disperser: [
        "32/mm_G5506",
        "32/mm_G5506&SXD_G5536",
        "111/mm_G5505",
        "10/mm_G5507&XD",
        null,
      ],
      filter_name: ["X_G0518", "H2_G0522", null],
      read_mode: ["Bright Objects", "Faint Objects", null],
      well_depth_setting: ["Shallow", "Deep", null],
      camera: ["ShortBlue_G5540", "LongBlue_G5542", "LongRed_G5543", null],
      focal_plane_mask: [
        "0.30arcsec&SCXD_G5531",
        "HR-IFU_G5546",
        "SmPinholes_G5522&SCXD_G5531",
        "0.45arcsec",
        null,
      ],
      array_name: ["SN7638228.1", "SN7638228.1,X", null],
      prism_motor_steps: [1, 2, null],
    },
    setups: [
      {
        spectroscopy: false,
        inst: { camera: "ShortBlue_G5540" },
        tags: ["IMAGE"],
      },
      {
        spectroscopy: true,
        inst: {
          disperser: "32/mm_G5506&SXD_G5536",
          focal_plane_mask: "HR-IFU_G5546",
        },
        tags: ["SPECT", "XD"],
      },
      {
        spectroscopy: true,
        inst: { camera: "LongBlue_G5542" },
        tags: ["LS", "SPECT"],
      },
    ],
  },
];

/** What an OBJECT frame is for: its class, object, program and tags. */
const ROLES: { header: Record<string, Cell>; tags: string[] }[] = [
  { header: { observation_class: "science" }, tags: [] },
  { header: { observation_class: "science" }, tags: [] },
  {
    header: {
      observation_class: "partnerCal",
      program_id: "GN-CAL20190615",
      phot_standard: true,
      object: "Feige34",
    },
    tags: ["STANDARD"],
  },
  {
    header: { observation_class: "progCal", object: "HIP 1234" },
    tags: ["TELLURIC"],
  },
  {
    header: { observation_class: "partnerCal", object: "HIP 1234" },
    tags: ["TELLURIC"],
  },
  {
    header: { observation_class: "dayCal", object: "Twilight" },
    tags: ["SLITILLUM"],
  },
];

/** Days from a setup's night: the windows' edges and some in between. */
const OFFSETS = [
  0, 0.01, -0.3, 0.99, -1, 1, 2, -30, 89.99, -90, 179.9, 180, 182.9, -183, 364,
  365, -400,
];

const T0 = Date.UTC(2019, 5, 15, 6);

function iso(ms: number, micros: number): string {
  const base = new Date(ms).toISOString().slice(0, 19);
  return micros === 0 ? base : `${base}.${String(micros).padStart(6, "0")}`;
}

interface Setup {
  instrument: string;
  spectroscopy: boolean;
  wavelength: Cell;
  inst: Record<string, Cell>;
  header: Record<string, Cell>;
  tags: string[];
  night: number;
}

function firstValues(domain: Domain): Record<string, Cell> {
  return Object.fromEntries(Object.entries(domain).map(([k, v]) => [k, v[0]!]));
}

/** `n` frames of one instrument around three setups. */
function frames(rng: Random, d: InstrumentDomain, n: number) {
  const setups: Setup[] = d.setups.map((setup, i) => ({
    instrument: d.instruments[0]!,
    spectroscopy: setup.spectroscopy,
    wavelength: d.wavelengths[0]!,
    inst: { ...firstValues(d.columns), ...setup.inst },
    header: firstValues(HEADER),
    tags: setup.tags,
    night: i * 20,
  }));
  const rows = [];
  for (let i = 0; i < n; i++) {
    const setup = rng.pick(setups);
    const obstype = rng.weighted(d.obstypes, (t) => (t === "OBJECT" ? 4 : 1));
    const reductionKind =
      obstype !== "MASK" && rng.chance(0.3) ? "processed" : "raw";
    const processedAs =
      obstype === "OBJECT"
        ? rng.pick(["STANDARD", "TELLURIC", "SCIENCE", "SLITILLUM", "FRINGE"])
        : obstype;
    const header: Record<string, Cell> = {
      ...setup.header,
      instrument: rng.chance(0.05)
        ? rng.pick([...d.instruments, null])
        : setup.instrument,
      observation_type: obstype,
      spectroscopy: rng.chance(0.03)
        ? null
        : rng.chance(0.1)
          ? !setup.spectroscopy
          : setup.spectroscopy,
      central_wavelength: rng.chance(0.3)
        ? rng.pick(d.wavelengths)
        : setup.wavelength,
      reduction:
        reductionKind === "processed"
          ? `PROCESSED_${processedAs}`
          : rng.chance(0.03)
            ? "PREPARED"
            : "RAW",
      processing:
        reductionKind === "processed"
          ? rng.pick(["Science-Quality", "Quick-Look", null])
          : rng.chance(0.02)
            ? null
            : "Raw",
      processing_tag:
        reductionKind === "processed"
          ? rng.pick(["sq", "ql", "draft", null])
          : rng.chance(0.05)
            ? "draft"
            : null,
      qa_state: rng.weighted(
        ["Pass", "Usable", "Undefined", "CHECK", "Fail", null],
        (q) => (q === "Pass" ? 10 : 1),
      ),
      engineering: rng.chance(0.05) ? rng.pick([true, null]) : false,
    };
    // Nudge one or two header columns off the setup.
    for (let k = rng.int(0, 2); k > 0; k--) {
      const [column, values] = rng.pick(Object.entries(HEADER));
      header[column] = rng.pick(values);
    }
    const role = obstype === "OBJECT" ? rng.pick(ROLES) : undefined;
    if (role !== undefined && rng.chance(0.9)) {
      Object.assign(header, role.header);
    }
    // Lamp-off flats pair with lamp-on ones and serve thermal wavelengths.
    if (obstype === "FLAT" && rng.chance(0.5)) {
      header.gcal_lamp = rng.pick(["Off", "QH", "IRhigh"]);
    }
    const day =
      setup.night +
      rng.pick(OFFSETS) +
      (rng.chance(0.5) ? rng.range(-0.5, 0.5) : 0);
    const micros = rng.chance(0.2) ? rng.int(0, 999_999) : 0;
    const ut = rng.chance(0.01)
      ? null
      : iso(T0 + Math.round(day * 86_400) * 1000, micros);
    header.ut_datetime = ut;
    header.ut_datetime_secs =
      ut === null || rng.chance(0.01) ? null : utDatetimeSecs(ut);
    const inst = { ...setup.inst };
    for (let k = rng.int(0, 2); k > 0; k--) {
      const [column, values] = rng.pick(Object.entries(d.columns));
      inst[column] = rng.pick(values);
    }
    const tags = new Set([...setup.tags, ...(role?.tags ?? [])]);
    if (rng.chance(0.25)) {
      tags.add(rng.pick(d.tags));
    }
    if (
      header.reduction === "PROCESSED_STANDARD" ||
      (obstype === "OBJECT" &&
        header.observation_class === "partnerCal" &&
        rng.chance(0.5))
    ) {
      tags.add("STANDARD");
    }
    header.types = rng.chance(0.005) ? null : typesText(tags);
    rows.push({
      table: d.table,
      header,
      inst: rng.chance(0.02) ? null : inst,
      canonical: !rng.chance(0.08),
      // Few distinct entry times, so the last tiebreak is exercised too.
      entrytime: iso(Date.UTC(2024, 0, 1) + rng.int(0, 20) * 1000, 0),
    });
  }
  return rows;
}

export interface GeneratedArchive {
  /** Header ids by instrument table. */
  headerIds: Record<string, number[]>;
}

/** Writes the archive (about `perInstrument` frames each) and its processing tags. */
export async function generateCalArchive(
  client: AnyClient,
  seed: number,
  perInstrument: number,
): Promise<GeneratedArchive> {
  const rng = new Random(seed);
  await client.query(
    `INSERT INTO processingtag (tag, domain, priority, published) VALUES
       ('sq', 'archive', 2, true), ('ql', 'archive', 1, true), ('draft', 'archive', 9, false)`,
  );
  const headerIds: Record<string, number[]> = {};
  let n = 0;
  for (const d of INSTRUMENTS) {
    const ids: number[] = [];
    for (const row of frames(rng, d, perInstrument)) {
      n += 1;
      const name = `${d.table}-${n}.fits`;
      const { rows: file } = await client.query<{ id: number }>(
        "INSERT INTO file (name) VALUES ($1) RETURNING id",
        [name],
      );
      const { rows: disk } = await client.query<{ id: number }>(
        `INSERT INTO diskfile (file_id, filename, path, present, canonical, entrytime)
         VALUES ($1, $2, '', $3, $3, $4) RETURNING id`,
        [file[0]!.id, name, row.canonical, row.entrytime],
      );
      const header = { diskfile_id: disk[0]!.id, ...row.header };
      const hid = await insert(client, "header", header);
      if (row.inst !== null) {
        await insert(client, row.table, { header_id: hid, ...row.inst });
      }
      ids.push(hid);
    }
    headerIds[d.table] = ids;
  }
  return { headerIds };
}

async function insert(
  client: AnyClient,
  table: string,
  row: Record<string, Cell>,
): Promise<number> {
  const columns = Object.keys(row);
  const { rows } = await client.query<{ id: number }>(
    `INSERT INTO ${table} (${columns.join(", ")})
     VALUES (${columns.map((_, i) => `$${i + 1}`).join(", ")}) RETURNING id`,
    Object.values(row),
  );
  return rows[0]!.id;
}

export interface IngestedFrame {
  /** The file's name as ingest stores it (its `file.name`). */
  name: string;
  table: "gmos" | "niri" | "f2" | "gnirs";
  /** header columns; ut_datetime as 'YYYY-MM-DDTHH:MM:SS[.ffffff]'. */
  header: Record<string, Cell>;
  /** The instrument row; null for none. */
  inst: Record<string, Cell> | null;
  /** Written to header.types as the reference's set repr; without, header.types is kept. */
  tags?: string[];
  path?: string;
}

/**
 * Writes one frame through the archive writer, exactly as ingest's careful
 * path does (lib/rebuild/ingest.ts writeOne): the file-name lock, the
 * `file` row, earlier versions superseded, then diskfile, header,
 * instrument row and the `calcachequeue` entry. Returns the header id.
 * Call inside a transaction.
 */
export async function ingestFrame(
  client: AnyClient,
  frame: IngestedFrame,
): Promise<number> {
  const path = frame.path ?? "";
  const ut = frame.header.ut_datetime;
  const header: Record<string, Cell> = {
    ...frame.header,
    ut_datetime_secs:
      typeof ut === "string" ? utDatetimeSecs(ut) : (ut ?? null),
    ...(frame.tags === undefined
      ? {}
      : { types: typesText(new Set(frame.tags)) }),
  };
  const unknown = Object.keys(header).filter(
    (c) => !HEADER_COLUMN_NAMES.includes(c),
  );
  if (unknown.length > 0) {
    throw new Error(`not header columns: ${unknown.join(", ")}`);
  }
  await lockFileName(client, frame.name);
  const fileId = (await fileIds(client, [frame.name])).get(frame.name)!;
  await supersedeDiskfiles(client, fileId, path);
  const [diskfileId] = await writeDiskfiles(client, [
    {
      fileId,
      filename: frame.name,
      path,
      sortkey: sortKey(frame.name),
      stat: {
        path,
        name: frame.name,
        size: 2880,
        lastModified: new Date(),
      },
      read: {
        name: frame.name,
        compressed: false,
        fileMd5: "0".repeat(32),
        fileSize: 2880,
        dataMd5: "0".repeat(32),
        dataSize: 2880,
      },
      rows: {
        header,
        instrument:
          frame.inst === null
            ? []
            : [{ table: frame.table, values: frame.inst }],
        warnings: [],
        reasons: {},
      },
    },
  ]);
  const { rows } = await client.query<{ id: number }>(
    "SELECT id FROM header WHERE diskfile_id = $1",
    [diskfileId],
  );
  return rows[0]!.id;
}

const REPLICATED_TABLES = ["gmos", "niri", "f2", "gnirs"] as const;

async function columnsOf(client: AnyClient, table: string): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT quote_ident(attname) AS name FROM pg_attribute
      WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped
      ORDER BY attnum`,
    [`public.${table}`],
  );
  return rows.map((r) => r.name);
}

/**
 * Copies the whole archive `copies` more times, each copy's frames observed
 * `shiftDays` later than the one before, in a few INSERT … SELECT
 * statements: a large archive with the generator's shapes, fast. A copy has
 * its own file names, data labels, observation ids and MOS mask names (they
 * name one observation in a real archive) and no processed BPMs (a real
 * archive holds a handful per detector setup, not one per hundred frames);
 * everything else is the same. Returns the number of headers after.
 */
export async function replicateCalArchive(
  client: AnyClient,
  copies: number,
  shiftDays: number,
): Promise<number> {
  const { rows: maxima } = await client.query<Record<string, number>>(
    `SELECT (SELECT coalesce(max(id), 0) FROM file) AS file,
            (SELECT coalesce(max(id), 0) FROM diskfile) AS diskfile,
            (SELECT coalesce(max(id), 0) FROM header) AS header,
            ${REPLICATED_TABLES.map((t) => `(SELECT coalesce(max(id), 0) FROM ${t}) AS ${t}`).join(", ")}`,
  );
  const max = maxima[0]!;
  const step = Math.max(...Object.values(max).map(Number)) + 1;
  const copy = async (
    table: string,
    set: Record<string, string>,
  ): Promise<void> => {
    const columns = await columnsOf(client, table);
    const select = columns.map((c) => set[c] ?? c);
    const bpm = `(SELECT h.id FROM header h WHERE h.reduction = 'PROCESSED_BPM')`;
    const skip =
      table === "header"
        ? `AND id NOT IN ${bpm}`
        : REPLICATED_TABLES.includes(table as "gmos")
          ? `AND header_id NOT IN ${bpm}`
          : "";
    await client.query(
      `INSERT INTO ${table} (${columns.join(", ")})
       SELECT ${select.join(", ")}
         FROM ${table}, generate_series(1, $1::int) AS k
        WHERE id < $2 ${skip}`,
      [copies, step],
    );
    await client.query(
      `SELECT setval(pg_get_serial_sequence('${table}', 'id'), (SELECT max(id) FROM ${table}))`,
    );
  };
  const offset = (column: string) => `${column} + k * ${step}`;
  await copy("file", { id: offset("id"), name: `name || '-' || k` });
  await copy("diskfile", {
    id: offset("id"),
    file_id: offset("file_id"),
    filename: `filename || '-' || k`,
  });
  await copy("header", {
    id: offset("id"),
    diskfile_id: offset("diskfile_id"),
    ut_datetime: `ut_datetime + make_interval(days => k * ${shiftDays})`,
    ut_datetime_secs: `ut_datetime_secs + k * ${shiftDays}::bigint * 86400`,
    data_label: `data_label || '-' || k`,
    observation_id: `observation_id || '-' || k`,
  });
  for (const table of REPLICATED_TABLES) {
    await copy(table, {
      id: offset("id"),
      header_id: offset("header_id"),
      ...(table === "gmos"
        ? {
            focal_plane_mask: `CASE WHEN focal_plane_mask LIKE 'GN20%' THEN focal_plane_mask || '-' || k ELSE focal_plane_mask END`,
          }
        : {}),
    });
  }
  const { rows } = await client.query<{ n: string }>(
    "SELECT count(*) AS n FROM header",
  );
  return Number(rows[0]!.n);
}
