/* Baseline for bench/fits-headers.ts: reads every card of every HDU of the
 * files listed on stdin with cfitsio, timing itself (start-up excluded).
 * Build: cc -O2 -o cfitsio-headers cfitsio-headers.c -lcfitsio
 * Prints: <files> <cards> <seconds> */
#include <fitsio.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int main(void) {
  static char paths[20000][512];
  int n = 0;
  while (n < 20000 && fgets(paths[n], sizeof paths[n], stdin)) {
    paths[n][strcspn(paths[n], "\n")] = 0;
    n++;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  long cards = 0;
  for (int i = 0; i < n; i++) {
    fitsfile *f;
    int status = 0, hdutype, nkeys, more;
    char card[FLEN_CARD];
    if (fits_open_file(&f, paths[i], READONLY, &status)) {
      fprintf(stderr, "%s: cfitsio status %d\n", paths[i], status);
      return 1;
    }
    for (;;) {
      fits_get_hdrspace(f, &nkeys, &more, &status);
      for (int k = 1; k <= nkeys; k++) {
        fits_read_record(f, k, card, &status);
      }
      cards += nkeys;
      if (fits_movrel_hdu(f, 1, &hdutype, &status)) {
        break;
      }
    }
    status = 0;
    fits_close_file(f, &status);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("%d %ld %.6f\n", n, cards, (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
  return 0;
}
