/**
 * What can be wrong with a FITS file. Each is a specific error naming the
 * file, the HDU and the byte offset, so an operator can find the problem with
 * `fitsfleet fits inspect`. All are permanent: retrying cannot help.
 */
import { EXIT, FitsfleetError, type FitsfleetErrorOptions } from "../errors.js";

export type FitsProblem =
  | "not-fits" // empty, or does not start with SIMPLE
  | "missing-end" // the file ends inside a header (no END card)
  | "bad-card" // a header byte that is not printable ASCII (e.g. newline-separated cards)
  | "bad-keyword" // a mandatory keyword missing or invalid (BITPIX, NAXIS, NAXISn, XTENSION order)
  | "truncated-data" // the file ends inside a data unit
  | "bzip2"; // the compressed stream is truncated or corrupt

export class FitsFormatError extends FitsfleetError {
  readonly problem: FitsProblem;
  readonly file: string | undefined;

  constructor(
    problem: FitsProblem,
    message: string,
    where: { file?: string | undefined; hdu?: number; offset?: number } = {},
    options: FitsfleetErrorOptions = {},
  ) {
    const place = [
      where.file,
      where.hdu === undefined ? undefined : `HDU ${where.hdu}`,
      where.offset === undefined ? undefined : `byte ${where.offset}`,
    ]
      .filter((p) => p !== undefined)
      .join(", ");
    super(
      `fits-${problem}`,
      EXIT.failed,
      place === "" ? message : `${place}: ${message}`,
      {
        suggestion:
          "the file is damaged or not FITS; `fitsfleet fits inspect FILE` shows how far it reads",
        fault: "permanent",
        ...options,
        context: { problem, ...where, ...options.context },
      },
    );
    this.problem = problem;
    this.file = where.file;
  }
}
