#!/usr/bin/python3
"""The reference's own per-frame calibration code, run against a test database.

Used by test/cal/oracle.test.ts to check fitsfleet's rules frame by frame
against the pinned reference, not against our reading of it. The reference's
files are loaded from the read-only copy under shared/docs/reference (never
copied into this repository); this script supplies only what that copy lacks:
the ORM classes (reflected from the database the migrations built), the
configuration (an archive server), and empty stand-ins for the instruments
and queue plumbing outside the calibration code.

Usage (Debian's python3 with python3-sqlalchemy 1.4 and python3-psycopg2):

    /usr/bin/python3 test/cal/reference-oracle.py REFERENCE_ROOT DATABASE_URL HID...

For each header id it runs CalCacheQueue.cache_associations, exactly as the
reference's service_calcache_queue does, and prints one JSON object: header
id -> {"rows": [[caltype, rank, cal_hid], ...]} or {"error": message}.
"""

import datetime
import importlib.util
import json
import sys
import types

from sqlalchemy import Table, create_engine, select
from sqlalchemy.orm import Session, declarative_base

root, url, *hids = sys.argv[1:]
engine = create_engine(url.replace("postgres://", "postgresql://", 1), future=True)
Base = declarative_base()


def stub(name, **attrs):
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


def package(name, path=None):
    return stub(name, __path__=[] if path is None else [path])


def load(name, path):
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=None
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_package(name, folder):
    spec = importlib.util.spec_from_file_location(
        name, f"{folder}/__init__.py", submodule_search_locations=[folder]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def reflected(class_name, table):
    return type(
        class_name, (Base,), {"__table__": Table(table, Base.metadata, autoload_with=engine)}
    )


ref = f"{root}/fits_storage"
package("fits_storage", ref)
config = types.SimpleNamespace(is_server=True, is_archive=True)
stub("fits_storage.config", get_config=lambda: config)

package("fits_storage.core")
package("fits_storage.core.orm").Base = Base
stub("fits_storage.core.orm.header", Header=reflected("Header", "header"))
stub("fits_storage.core.orm.diskfile", DiskFile=reflected("DiskFile", "diskfile"))
stub("fits_storage.core.orm.file", File=reflected("File", "file"))
package("fits_storage.server")
package("fits_storage.server.orm")
stub(
    "fits_storage.server.orm.processingtag",
    ProcessingTag=reflected("ProcessingTag", "processingtag"),
)

# The reference's UT_DATETIME_SECS_EPOCH lives in a file the copy lacks.
stub(
    "fits_storage.gemini_metadata_utils.datestimes",
    UT_DATETIME_SECS_EPOCH=datetime.datetime(2000, 1, 1),
)
stub("fits_storage.gemini_metadata_utils.coords")
load_package("fits_storage.gemini_metadata_utils", f"{ref}/gemini_metadata_utils")

package("fits_storage.cal", f"{ref}/cal")
package("fits_storage.cal.orm", f"{ref}/cal/orm")
stub("fits_storage.cal.orm.gmos", Gmos=reflected("Gmos", "gmos"))
stub("fits_storage.cal.orm.niri", Niri=reflected("Niri", "niri"))
stub("fits_storage.cal.orm.f2", F2=reflected("F2", "f2"))
stub("fits_storage.cal.orm.gnirs", Gnirs=reflected("Gnirs", "gnirs"))
load("fits_storage.cal.orm.calcache", f"{ref}/cal/orm/calcache.py")

calibration = load(
    "fits_storage.cal.calibration.calibration", f"{ref}/cal/calibration/calibration.py"
)
# Instruments outside fitsfleet's rules: the base class (nothing applies).
for module, cls in [
    ("nifs", "CalibrationNIFS"),
    ("michelle", "CalibrationMICHELLE"),
    ("gsaoi", "CalibrationGSAOI"),
    ("nici", "CalibrationNICI"),
    ("gpi", "CalibrationGPI"),
    ("ghost", "CalibrationGHOST"),
    ("igrins2", "CalibrationIgrins2"),
]:
    stub(
        f"fits_storage.cal.calibration.calibration_{module}",
        **{cls: type(cls, (calibration.Calibration,), {})},
    )
load_package("fits_storage.cal.calibration", f"{ref}/cal/calibration")
load("fits_storage.cal.associate_calibrations", f"{ref}/cal/associate_calibrations.py")


class Queue:
    def __init__(self, session, ormclass=None, logger=None):
        self.session = session
        self.logger = logger


package("fits_storage.queues", f"{ref}/queues")
package("fits_storage.queues.queue", f"{ref}/queues/queue")
stub("fits_storage.queues.queue.queue", Queue=Queue)
package("fits_storage.queues.orm")
stub("fits_storage.queues.orm.calcachequeueentry", CalCacheQueueEntry=object)
calcachequeue = load(
    "fits_storage.queues.queue.calcachequeue", f"{ref}/queues/queue/calcachequeue.py"
)
CalCache = sys.modules["fits_storage.cal.orm.calcache"].CalCache

out = {}
with Session(engine, future=True) as session:
    queue = calcachequeue.CalCacheQueue(session)
    for hid in map(int, hids):
        result = {}
        try:
            queue.cache_associations(hid)
        except Exception as error:  # the service marks the entry failed
            session.rollback()
            result["error"] = f"{type(error).__name__}: {error}"
        # What stays in calcache, committed type by type before any failure.
        rows = session.execute(
            select(CalCache.caltype, CalCache.rank, CalCache.cal_hid)
            .where(CalCache.obs_hid == hid)
            .order_by(CalCache.id)
        ).all()
        result["rows"] = [[c, r, h] for c, r, h in rows]
        out[hid] = result
json.dump(out, sys.stdout)
