"""Baseline for bench/preview-render.ts: one preview rendered the way the
reference does (FitsStorage v3 Previewer.render_image, DOMAIN.md section 4),
with Debian's python3-astropy, numpy and python3-matplotlib (Agg).

- GMOS with more than one science extension: a float64 mosaic of the
  amplifiers from DETSEC, DATASEC, BIASSEC and CCDSUM, with the reference's
  chip-gap rule (40 unbinned columns for amplifiers starting at x = 2048 or
  3072, 80 at 4096 or 5120), each (data - median(overscan)) * GAIN, then
  norm(percentile=5);
- anything else: numpy.squeeze of the primary's data (the first image
  extension when the primary is empty), norm(percentile=0.3);
- numpy.flip(..., 0), imshow(cmap=gray) on a frameless full-figure axes of
  matplotlib's default figure (6.4 x 4.8 in at 100 dpi), savefig as JPEG.

Astrodata's descriptors are read here as the plain keywords they come from,
which only makes this faster than the reference.

Usage: reference-preview.py FITS OUT.jpg [renders=1]
Prints one line per render: <milliseconds> <peak RSS in KiB so far> (with
renders 0, one line "0 <peak RSS>" after the imports). The clock starts after
the imports, so interpreter start-up is excluded.
"""
import re
import resource
import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy  # noqa: E402
from astropy.io import fits  # noqa: E402

GAP = 40
SECTION = re.compile(r"^\s*\[\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*:\s*(\d+)\s*\]\s*$")


def section(text):
    """A FITS section "[x1:x2,y1:y2]" as 0-based, end-exclusive (x0, x1, y0, y1)."""
    m = SECTION.match(text or "")
    if m is None:
        return None
    x1, x2, y1, y2 = (int(g) for g in m.groups())
    return x1 - 1, x2, y1 - 1, y2


def norm(data, percentile=0.3):
    plow = numpy.percentile(data, percentile)
    phigh = numpy.percentile(data, 100 - percentile)
    data = numpy.clip(data, plow, phigh)
    data -= plow
    data /= phigh - plow
    return data


def science(hdul):
    return [
        h
        for h in hdul[1:]
        if isinstance(h, fits.ImageHDU) and h.header.get("EXTNAME", "SCI").strip().upper() in ("", "SCI")
    ]


def gmos_mosaic(exts):
    xbin, ybin = (int(v) for v in exts[0].header.get("CCDSUM", "1 1").split())
    detsecs = [section(h.header["DETSEC"]) for h in exts]
    xmin = min(d[0] for d in detsecs) // xbin
    xmax = max(d[1] for d in detsecs) // xbin
    ymin = min(d[2] for d in detsecs) // ybin
    ymax = max(d[3] for d in detsecs) // ybin
    full = numpy.zeros((ymax - ymin, xmax - xmin + 2 * GAP), numpy.float64)
    for h, (dx0, dx1, dy0, dy1) in zip(exts, detsecs):
        shift = 2 * GAP if dx0 in (4096, 5120) else GAP if dx0 in (2048, 3072) else 0
        tx0 = (dx0 + shift) // xbin - xmin
        tx1 = (dx1 + shift) // xbin - xmin
        ty0 = dy0 // ybin - ymin
        ty1 = dy1 // ybin - ymin
        data = h.data
        bias = 0
        over = section(h.header.get("BIASSEC"))
        if over is not None:
            bias = numpy.median(data[over[2] : over[3], over[0] : over[1]])
        d = section(h.header["DATASEC"])
        gain = h.header.get("GAIN", 1)
        full[ty0:ty1, tx0:tx1] = (data[d[2] : d[3], d[0] : d[1]] - bias) * gain
    return norm(full, percentile=5)


def render(path, out):
    with fits.open(path) as hdul:
        exts = science(hdul)
        if "GMOS" in str(hdul[0].header.get("INSTRUME", "")).upper() and len(exts) > 1:
            full = gmos_mosaic(exts)
        else:
            data = hdul[0].data if hdul[0].data is not None else exts[0].data
            full = norm(numpy.squeeze(data))
        fig = plt.figure(frameon=False)
        ax = plt.Axes(fig, [0.0, 0.0, 1.0, 1.0])
        ax.set_axis_off()
        fig.add_axes(ax)
        plt.imshow(numpy.flip(full, 0), cmap=plt.cm.gray)
        fig.savefig(out, format="jpg")
        plt.close()


def peak_kib():
    """The process's peak RSS. Not ru_maxrss: after fork() and exec() that
    still counts the parent's memory at the fork; VmHWM starts afresh."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main():
    path, out = sys.argv[1], sys.argv[2]
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    if repeats == 0:
        print(f"0 {peak_kib()}")
    for _ in range(repeats):
        started = time.perf_counter()
        render(path, out)
        ms = (time.perf_counter() - started) * 1000
        print(f"{ms:.1f} {peak_kib()}", flush=True)


main()
