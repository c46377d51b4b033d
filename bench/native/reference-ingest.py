"""Baseline for bench/rebuild-ingest.ts: ingest the way the reference does
(FitsStorage's Ingester.ingest_file, DOMAIN.md section 2.3), one file at a time
in one process, with Debian's python3-astropy and python3-psycopg2.

Per file: the file row (look-up, insert when missing), the present-diskfile
look-up, md5 of the stored bytes in 1 MB chunks, for .bz2 decompression into a
temporary file in a staging folder with the md5 of the decompressed bytes, the
earlier version marked not present, the diskfile row, every header read with
astropy, a header row and an instrument row from the keywords, a calcachequeue
row, and one commit.

It is kinder to itself than the reference: the reference also runs fitsverify,
builds AstroData (tags and descriptors) and commits several times per file.

Usage: reference-ingest.py DSN ROOT STAGING < names (one path relative to ROOT a line)
Prints: <files> <seconds>
"""
import bz2
import datetime
import hashlib
import os
import sys
import time
import warnings

import psycopg2
from astropy.io import fits

CHUNK = 1024 * 1024
TELESCOPES = {"Gemini-North", "Gemini-South"}
OBSTYPES = {"DARK", "ARC", "FLAT", "BIAS", "OBJECT", "PINHOLE", "RONCHI", "CAL", "FRINGE", "MASK"}
OBSCLASSES = {"dayCal", "partnerCal", "acqCal", "acq", "science", "progCal", "nightCal"}
INSTRUMENT_TABLE = {"GMOS-N": "gmos", "GMOS-S": "gmos", "NIRI": "niri", "F2": "f2", "GNIRS": "gnirs"}


def md5_of(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def decompress(path, staging):
    """Decompresses into the staging folder, returning (temp path, md5, size)."""
    target = os.path.join(staging, os.path.basename(path)[: -len(".bz2")])
    h = hashlib.md5()
    size = 0
    with bz2.open(path, "rb") as src, open(target, "wb") as dst:
        for block in iter(lambda: src.read(CHUNK), b""):
            h.update(block)
            size += len(block)
            dst.write(block)
    return target, h.hexdigest(), size


def number(value, limit):
    """A numeric keyword that fits its NUMERIC column (below `limit` in magnitude), else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < limit:
        return value
    return None


def text(value):
    return None if value is None else str(value).strip()


def ut_datetime(phu):
    date, clock = phu.get("DATE-OBS"), phu.get("TIME-OBS") or phu.get("UT")
    try:
        return datetime.datetime.fromisoformat(f"{date}T{clock}") if date and clock else None
    except ValueError:
        return None


def ingest(cur, root, staging, relative):
    path = os.path.join(root, relative)
    directory, filename = os.path.split(relative)
    name = filename[: -len(".bz2")] if filename.endswith(".bz2") else filename
    if not (os.access(path, os.F_OK | os.R_OK) and os.path.isfile(path)):
        raise RuntimeError(f"Cannot access {path}")

    cur.execute("SELECT id FROM file WHERE name = %s", (name,))
    row = cur.fetchone()
    if row is None:
        cur.execute("INSERT INTO file (name) VALUES (%s) RETURNING id", (name,))
        row = cur.fetchone()
    file_id = row[0]
    cur.execute(
        "SELECT id, lastmod, file_md5 FROM diskfile WHERE file_id = %s AND path = %s AND present",
        (file_id, directory),
    )
    cur.fetchall()

    stat = os.stat(path)
    file_md5, file_size = md5_of(path), stat.st_size
    compressed = filename.endswith(".bz2")
    temporary = None
    if compressed:
        temporary, data_md5, data_size = decompress(path, staging)
        fits_path = temporary
    else:
        data_md5, data_size, fits_path = file_md5, file_size, path
    try:
        cur.execute(
            "UPDATE diskfile SET present = false, canonical = false"
            " WHERE file_id = %s AND path = %s AND (present OR canonical)",
            (file_id, directory),
        )
        cur.execute(
            "INSERT INTO diskfile (file_id, filename, path, present, canonical, file_md5, file_size,"
            " lastmod, entrytime, compressed, data_md5, data_size)"
            " VALUES (%s, %s, %s, true, true, %s, %s, %s, now(), %s, %s, %s) RETURNING id",
            (
                file_id, filename, directory, file_md5, file_size,
                datetime.datetime.fromtimestamp(stat.st_mtime, datetime.timezone.utc),
                compressed, data_md5, data_size,
            ),
        )
        diskfile_id = cur.fetchone()[0]

        with fits.open(fits_path, disable_image_compression=True) as hdul:
            headers = [hdu.header for hdu in hdul]
        phu = headers[0]
        extension = headers[1] if len(headers) > 1 else phu
        telescope = text(phu.get("TELESCOP"))
        obstype = text(phu.get("OBSTYPE"))
        obsclass = text(phu.get("OBSCLASS"))
        instrument = text(phu.get("INSTRUME"))
        cur.execute(
            "INSERT INTO header (diskfile_id, program_id, observation_id, data_label, telescope,"
            " instrument, ut_datetime, observation_type, observation_class, object, ra, dec,"
            " airmass, filter_name, exposure_time, disperser, focal_plane_mask, detector_binning,"
            " numpix)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " RETURNING id",
            (
                diskfile_id,
                text(phu.get("GEMPRGID")),
                text(phu.get("OBSID")),
                text(phu.get("DATALAB")),
                telescope if telescope in TELESCOPES else None,
                instrument,
                ut_datetime(phu),
                obstype if obstype in OBSTYPES else None,
                obsclass if obsclass in OBSCLASSES else None,
                text(phu.get("OBJECT")),
                number(phu.get("RA"), 1e4),
                number(phu.get("DEC"), 1e4),
                number(phu.get("AIRMASS"), 1e2),
                text(phu.get("FILTER") or phu.get("FILTER1")),
                number(phu.get("EXPTIME"), 1e6),
                text(phu.get("GRATING") or phu.get("DISPERSR") or phu.get("GRISM")),
                text(phu.get("MASKNAME") or phu.get("SLIT") or phu.get("FPMASK")),
                text(extension.get("CCDSUM")),
                sum(h.get("NAXIS1", 0) * h.get("NAXIS2", 1) for h in headers if h.get("NAXIS", 0) >= 2),
            ),
        )
        header_id = cur.fetchone()[0]
        table = INSTRUMENT_TABLE.get(instrument or "")
        if table is not None:
            cur.execute(
                f"INSERT INTO {table} (header_id, filter_name, focal_plane_mask) VALUES (%s, %s, %s)",
                (header_id, text(phu.get("FILTER") or phu.get("FILTER1")), text(phu.get("MASKNAME"))),
            )
        cur.execute(
            "INSERT INTO calcachequeue (obs_hid, inprogress, fail_dt, added, sortkey, filename)"
            " VALUES (%s, false, '9999-12-31 23:59:59.999999', now(), %s, %s)",
            (header_id, name, filename),
        )
    finally:
        if temporary is not None:
            os.unlink(temporary)


def main():
    dsn, root, staging = sys.argv[1:4]
    names = [line.strip() for line in sys.stdin if line.strip()]
    warnings.simplefilter("ignore")
    connection = psycopg2.connect(dsn)
    cur = connection.cursor()
    start = time.perf_counter()
    for relative in names:
        ingest(cur, root, staging, relative)
        connection.commit()
    print(len(names), f"{time.perf_counter() - start:.6f}")
    connection.close()


main()
