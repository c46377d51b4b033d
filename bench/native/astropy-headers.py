"""Baseline for bench/fits-headers.ts: astropy's fits.open and every header of
the files listed on stdin, timing itself (interpreter start-up excluded).
Prints: <files> <cards> <seconds>"""
import sys
import time
import warnings

from astropy.io import fits

paths = [line.strip() for line in sys.stdin if line.strip()]
warnings.simplefilter("ignore")
start = time.perf_counter()
cards = 0
for path in paths:
    with fits.open(path, disable_image_compression=True) as hdul:
        for hdu in hdul:
            cards += len(hdu.header)
print(len(paths), cards, f"{time.perf_counter() - start:.6f}")
