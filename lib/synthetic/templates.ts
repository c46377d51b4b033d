/**
 * Observation templates for the synthetic Gemini archive (archive.ts): the
 * keyword lists, values and extension layouts of real raw GMOS-N, GMOS-S,
 * NIRI, F2 and GNIRS frames, taken from the header dumps in
 * shared/fixtures/gemini-headers (CADC gem2caom2 test data). Only facts are
 * kept here: keyword names in the instruments' order, their comments, the
 * fixed values, the real sets of filters, gratings, masks and detectors, and
 * what varies per file as `$slot` names that archive.ts fills in.
 *
 * Sources (dump → what it gave):
 * - GMOS/N20150216S0142 (e2v DD, 6 amplifiers, imaging): the Gemini telescope
 *   block every instrument shares, the OIWFS guide block, the GMOS PHU and the
 *   amplifier extension; N20220915S0113 (Hamamatsu-N, 12 amplifiers, arc at
 *   zenith): the GCAL block, the Hamamatsu PHU cards and amplifier layout;
 *   N20100104S0210 / S20060101S0075 (EEV, 3 amplifiers): the EEV layouts;
 *   N20150217S0274 (bias), N20150929S0013 (dark with the telescope offline),
 *   N20030104S0161 (twilight flat), N20100104S0208 (long-slit GCAL flat),
 *   N20100115S0346 (arc), N20120105S0344 (acquisition through the slit),
 *   S20060122S0004 (MOS), S20060101S0075 (IFU-2).
 *   GMOS-S Hamamatsu amplifier names and gains: DRAGONS gmos lookups.
 * - NIRI/N20090105S0060 (long slit, PWFS2 guide block, NIRI PHU and
 *   extension), N20030912S0301 and N20211017S0139 (imaging),
 *   N20150404S0872 (dark), N20170302S0331 / N20150405S0028 (lamp-on/off
 *   flats), N20100620S0126 (arc).
 * - F2/S20171226S0358 (long slit, F2 PHU and the 3-D extension),
 *   S20170905S0318 (imaging), S20181230S0026 (MOS), S20150103S0148
 *   (acquisition), S20191214S0301 (dark), S20220912S0299 / S20220220S0198
 *   (flats), S20171123S0216 (arc).
 * - GNIRS/N20120103S0100 (cross-dispersed, GNIRS PHU and extension),
 *   N20120104S0167 (long slit), N20151213S0022 (imaging), N20170210S0013
 *   (dark), N20120103S0134 (flat), N20120101S0195 (arc).
 */

// --- card definitions ---------------------------------------------------------------

/** A value written in real (floating-point) form: `2000.`, `4.04E-05`. */
export interface Real {
  readonly real: number;
}

export const real = (value: number): Real => ({ real: value });

export type CardValue = string | number | boolean | Real;

/**
 * One card: keyword, value, comment. A string value `$name` is filled per file
 * from archive.ts's slots; a keyword `@name` splices in the named block (the
 * guide star, the GCAL lamp, the detector temperatures), which may be empty.
 * COMMENT cards carry their text as the value.
 */
export type CardDef = readonly [
  keyword: string,
  value: CardValue,
  comment: string,
];

/** Keyword → value for a template or variant; `null` leaves the card out. */
export type Overrides = Readonly<Record<string, CardValue | null>>;

/**
 * Card definitions written as the lines of a header dump:
 * `KEYWORD = value / comment`, where value is a FITS string ('…'), T or F, an
 * integer, a real (`2000.`, `1.45E-07`) or a `$slot`; `@name` splices a block
 * and `COMMENT text` is a commentary card.
 */
export function cards(text: string): CardDef[] {
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line): CardDef => {
      if (line.startsWith("@")) {
        return [line.trim(), "", ""];
      }
      if (line.startsWith("COMMENT ")) {
        return ["COMMENT", line.slice(8), ""];
      }
      const match =
        /^([A-Z0-9_-]{1,8})\s*=\s*('(?:[^']|'')*'|\S+)\s*(?:\/ ?(.*))?$/.exec(
          line,
        );
      if (match === null) {
        throw new Error(`not a card: ${line}`);
      }
      const [, keyword = "", value = "", comment = ""] = match;
      return [keyword, cardValue(value, line), comment.trimEnd()];
    });
}

function cardValue(text: string, line: string): CardValue {
  if (text.startsWith("'")) {
    return text.slice(1, -1).replaceAll("''", "'").trimEnd();
  }
  if (text.startsWith("$") || text === "T" || text === "F") {
    return text.startsWith("$") ? text : text === "T";
  }
  if (/^[+-]?\d+$/.test(text)) {
    return Number(text);
  }
  const value = Number(text);
  if (Number.isNaN(value)) {
    throw new Error(`not a card value: ${line}`);
  }
  return real(value);
}

export type Family = "GMOS" | "NIRI" | "F2" | "GNIRS";
export type Site = "N" | "S";

const PRIMARY_START: CardDef[] = [
  ...cards(`
SIMPLE  =                    T / file does conform to FITS standard
BITPIX  =                   16 / number of bits per data pixel
NAXIS   =                    0 / number of data axes
EXTEND  =                    T / FITS dataset may contain extensions
COMMENT   FITS (Flexible Image Transport System) format is defined in 'Astronomy
COMMENT   and Astrophysics', volume 376, page 359; bibcode: 2001A&A...376..359H
`),
];

/** Identity, telescope and conditions: the same cards, in the same order, for every instrument. */
const TELESCOPE: CardDef[] = [
  ...cards(`
INSTRUME= $instrument          / Instrument used to acquire data
OBJECT  = $object              / Object Name
OBSTYPE = $obstype             / Observation type
OBSCLASS= $obsclass            / Observe class
GEMPRGID= $programId           / Gemini programme ID
OBSID   = $observationId       / Observation ID / Data label
DATALAB = $dataLabel           / DHS data label
OBSERVER= $observer            / Observer
OBSERVAT= $observatory         / Name of telescope (Gemini-North|Gemini-South)
TELESCOP= $observatory         / Telescope
PARALLAX=                   0. / Parallax of Target
RADVEL  =                   0. / Heliocentric Radial Velocity
EPOCH   =                2000. / Epoch for Target coordinates
EQUINOX =                2000. / Equinox of coordinate system
TRKEQUIN=                2000. / Tracking equinox
SSA     = $ssa                 / SSA
RA      = $ra                  / Right Ascension
DEC     = $dec                 / Declination of Target
ELEVATIO= $elevation           / Current Elevation
AZIMUTH = $azimuth             / Current Azimuth
CRPA    = $crpa                / Current Cass Rotator Position Angle
HA      = $ha                  / Telescope hour angle
LT      = $lt                  / Local time at start of observation
TRKFRAME= $trkframe            / Tracking co-ordinate
DECTRACK= $dectrack            / Differential tracking rate Dec
TRKEPOCH= $trkepoch            / Differential tracking reference epoch
RATRACK = $ratrack             / Differential tracking rate RA
FRAME   = $frame               / Target coordinate system
PMDEC   =                   0. / Proper Motion in Declination
PMRA    =                   0. / Proper Motion in RA
WAVELENG= $waveleng            / Effective Target Wavelength
RAWIQ   = $rawiq               / Raw Image Quality
RAWCC   = $rawcc               / Raw Cloud Cover
RAWWV   = $rawwv               / Raw Water Vapour/Transparency
RAWBG   = $rawbg               / Raw Background
RAWPIREQ= $rawpireq            / PI Requirements Met
RAWGEMQA= $rawgemqa            / Gemini Quality Assessment
CGUIDMOD= 'Basic'              / Carousel Mode
UT      = $ut                  / UT at observation start
DATE    = $dateObs             / UT Date of observation (YYYY-MM-DD)
M2BAFFLE= $m2baffle            / Position of M2 baffle
M2CENBAF= $m2cenbaf            / Position of M2 central hole baffle
ST      = $st                  / Sidereal time at the start of the exposure
XOFFSET = $xoffset             / Telescope offset in x in arcsec
YOFFSET = $yoffset             / Telescope offset in y in arcsec
POFFSET = $poffset             / Telescope offset in p in arcsec
QOFFSET = $qoffset             / Telescope offset in q in arcsec
RAOFFSET= $raoffset            / Telescope offset in RA in arcsec
DECOFFSE= $decoffset           / Telescope offset in DEC in arcsec
RATRGOFF=                   0. / Target offset in RA in arcsec
DECTRGOF=                   0. / Target offset in DEC in arcsec
PA      = $pa                  / Sky Position Angle at start of exposure
IAA     = $iaa                 / Instrument Alignment Angle
SFRT2   = $sfrt2               / Science fold rotation angle (degrees)
SFTILT  = $sftilt              / Science fold tilt angle (degrees)
SFLINEAR= $sflinear            / Science fold linear position (mm)
AOFOLD  = 'park-pos.'          / AO Pick-Off Mirror Position
PWFS1_ST= 'parked'             / PWFS1 probe state (frozen,guiding,parked)
PWFS2_ST= $pwfs2               / PWFS2 probe state (frozen,guiding,parked)
OIWFS_ST= $oiwfs               / OIWFS probe state (frozen,guiding,parked)
AOWFS_ST= 'parked'             / AOWFS probe state (frozen,guiding,parked)
SCIBAND = $sciband             / Science Ranking Band
REQIQ   = $reqiq               / Requested Image Quality
REQCC   = $reqcc               / Requested Cloud Cover
REQBG   = $reqbg               / Requested Background
REQWV   = $reqwv               / Requested Water Vapour
NUMREQTW=                    0 / Number of Requested Timing Window REQTW entries
@gcal
@guide
HUMIDITY= $humidity            / The Relative Humidity (fraction, 0..101).
TAMBIENT= $tambient            / The ambient temp (C).
TAMBIEN2= $tambien2            / The ambient temp (F).
PRESSURE= $pressure            / The atmospheric pressure (mm Hg).
PRESSUR2= $pressur2            / The atmospheric pressure (Pa).
DEWPOINT= $dewpoint            / The dew point (C).
DEWPOIN2= $dewpoin2            / The dew point (F).
WINDSPEE= $windspee            / The wind speed (m/s).
WINDSPE2= $windspe2            / The wind speed (mph).
WINDDIRE= $winddire            / The wind direction (degrees).
`),
];

/** The telescope block of a frame taken with the TCS disconnected (GMOS/N20150929S0013). */
export const TELESCOPE_OFFLINE: Overrides = {
  PARALLAX: real(-9999),
  RADVEL: real(-9999),
  EPOCH: real(-9999),
  EQUINOX: real(-9999),
  TRKEQUIN: real(-9999),
  RA: real(-9999),
  DEC: real(-9999),
  ELEVATIO: real(-9999),
  AZIMUTH: real(-9999),
  CRPA: real(-9999),
  HA: "No Value",
  LT: "No Value",
  UT: "No Value",
  TRKFRAME: "No Value",
  DECTRACK: real(-9999),
  TRKEPOCH: real(-9999),
  RATRACK: real(-9999),
  FRAME: "No Value",
  PMDEC: real(-9999),
  PMRA: real(-9999),
  WAVELENG: real(-9999),
  ST: "No Value",
  SCIBAND: -9999,
  AIRMASS: real(-9999),
  AMSTART: real(-9999),
  AMEND: real(-9999),
};

/** The GCAL unit, present on flats and arcs (GMOS/N20220915S0113). */
export const GCAL_BLOCK: CardDef[] = [
  ...cards(`
GCALLAMP= $gcallamp            / GCAL Lamp name
GCALFILT= $gcalfilt            / GCAL Filter name
GCALDIFF= $gcaldiff            / GCAL Diffuser name
GCALSHUT= $gcalshut            / GCAL Shutter (OPEN or CLOSED)
`),
];

/** The on-instrument guide star (GMOS/N20150216S0142). */
export const GUIDE_OIWFS: CardDef[] = [
  ...cards(`
OIARA   = $guideRa             / RA of OIWFS guide star
OIARV   =                   0. / OIWFS Heliocentric Radial Velocity
OIAWAVEL=                6500. / OIWFS Effective Target Wavelength
OIADEC  = $guideDec            / Declination of OIWFS guide star
OIAEPOCH=                2000. / Epoch for OIWFS guide star coordinates
OIAEQUIN=                2000. / Equinox for OIWFS guide star coordinates
OIAFRAME= 'FK5'                / OIWFS Target co-ordinate system
OIAOBJEC= $guideName           / Object Name for OIWFS, Chop A
OIAPMDEC=                   0. / OIWFS Proper Motion in Declination
OIAPMRA =                   0. / OIWFS Proper Motion in RA
OIAPARAL=                   0. / OIWFS Parallax of Target
OIFREQ  =                 200. / OIWFS sampling frequency (Hz)
`),
];

/** The peripheral guide star (NIRI/N20090105S0060). */
export const GUIDE_PWFS2: CardDef[] = [
  ...cards(`
P2ARA   = $guideRa             / RA of PWFS2 guide star
P2ARV   =                   0. / PWFS2 Heliocentric Radial Velocity
P2AWAVEL=                7000. / PWFS2 Effective Target Wavelength
P2ADEC  = $guideDec            / Declination of PWFS2 guide star
P2AEPOCH=                2000. / Epoch for PWFS2 guide star coordinates
P2AEQUIN=                2000. / Equinox for PWFS2 guide star coordinates
P2AFRAME= 'FK5'                / PWFS2 Target co-ordinate system
P2AOBJEC= $guideName           / Object Name for PWFS 2, Chop A
P2APMDEC=                   0. / PWFS2 Proper Motion in Declination
P2APMRA =                   0. / PWFS2 Proper Motion in RA
P2APARAL=                   0. / PWFS2 Parallax of Target
P2FOCUS = $guideFocus          / PWFS2 Focus Offset (mm)
P2FREQ  =                  50. / PWFS2 sampling frequency (Hz)
`),
];

const AIRMASS: CardDef[] = [
  ...cards(`
AIRMASS = $airmass             / Mean airmass for the observation
AMSTART = $amstart             / Airmass at start of exposure
AMEND   = $amend               / Airmass at end of exposure
`),
];

/** A TAN projection in the primary header (NIRI, GNIRS) or an extension. */
const WCS: CardDef[] = [
  ...cards(`
CTYPE1  = 'RA---TAN'           / R.A. in tangent plane projection
CRPIX1  = $crpix1              / Ref pix of axis 1
CRVAL1  = $crval1              / RA at Ref pix in decimal degrees
CTYPE2  = 'DEC--TAN'           / DEC. in tangent plane projection
CRPIX2  = $crpix2              / Ref pix of axis 2
CRVAL2  = $crval2              / DEC at Ref pix in decimal degrees
CD1_1   = $cd11                / WCS matrix element 1 1
CD1_2   = $cd12                / WCS matrix element 1 2
CD2_1   = $cd21                / WCS matrix element 2 1
CD2_2   = $cd22                / WCS matrix element 2 2
`),
];

const IMAGE_EXTENSION_START: CardDef[] = [
  ...cards(`
XTENSION= 'IMAGE'              / IMAGE extension
BITPIX  = $bitpix              / number of bits per data pixel
NAXIS   = $naxis               / number of data axes
@naxes
PCOUNT  =                    0 / required keyword; must = 0
GCOUNT  =                    1 / required keyword; must = 1
EXTNAME = 'SCI'                / extension name
EXTVER  = $extver              / extension version
`),
];

// --- GMOS ------------------------------------------------------------------------------

const GMOS_PHU: CardDef[] = [
  ...PRIMARY_START,
  ...TELESCOPE,
  ...cards(`
INPORT  = $inport              / Number of ISS port where GMOS was located
GMOSCC  = $gmoscc              / GMOS components controller s/w
PREIMAGE=                    F / MOS pre-imaging
CONID   = $conid               / Detector controller ID
DETECTOR= $detector            / Detector name
DEWAR   = $dewar               / Dewar name
@detectorTemperatures
DETSIZE = $detsize             / Detector size
NCCDS   =                    3 / Number of CCD chips
NAMPS   = $namps               / Number of amplifiers
SHUTTER = $shutter             / Shutter state during observation
AMPINTEG= $ampinteg            / Amplifier integration time
OBSEPOCH= $obsepoch            / Epoch at start of exposure
TIMESYS = $timesys             / Time system used
DATE-OBS= $dateObs             / UT Date of observation (YYYY-MM-DD)
TIME-OBS= $timeObs             / Time of observation
GMOSTHT = 'GOOD'               / Shutter health
NSUBEXP =                    1 / Number of sub exposures
UTSTART = $timeObs             / UT at observation start
UTEND   = $utend               / UT at observation end
EXPTIME = $exptime             / Exposure time in seconds
ELAPSED = $exptime             / Elapsed observation time in seconds
DARKTIME= $darktime            / Dark current integration in seconds
MASKID  =                  -99 / Mask/IFU barcode
MASKNAME= 'None'               / Mask name
MASKTYP =                    0 / Mask/IFU type (0=none/-1=IFU/1=mask)
MASKLOC =                    1 / Mask/IFU location (-1=unknown/0=FP/1=cassette)
FILTER1 = 'open1-6'            / Filter 1 name
FILTID1 =             20000018 / Filter 1 barcode
FILTER2 = 'open2-8'            / Filter 2 name
FILTID2 =             20000008 / Filter 2 barcode
GRATING = 'MIRROR'             / Grating name
GRATID  =             30000008 / Grating barcode
GRWLEN  =                   0. / Grating wavelength at slit (nm)
CENTWAVE=                   0. / Central wavelength (nm)
GRORDER =                    0 / Grating order
GRTILT  =                  65. / Grating tilt angle (degrees)
GRSTEP  = $grstep              / Requested grating motor step position
DTAX    =                  84. / Detector translation X position (microns)
DTAY    = $dtay                / Detector translation Y position (microns)
DTAZ    = $dtaz                / Detector translation Z position (microns)
DTAZST  = $dtaz                / Focus at observation start (microns)
DTAZEN  = $dtaz                / Focus at observation end (microns)
DTAZME  =                   0. / Mean focus during observation (microns)
DTMODE  = 'FOLLOW-XY'          / Detector translation stage mode
ADCMODE = 'STOP'               / ADC mode
GMOSDC  = $gmosdc              / GMOS detector controller s/w
DETTYPE = $dettype             / Detector array type
DETID   = $detid               / Chip IDs
EXPOSURE= $exposure            / Requested exposure time in seconds
ADCUSED =                    1 / ADC used? (0=yes/1=no)
DETNROI =                    1 / No. regions of interest
ADCENPST=                   0. / Start entrance prism angle of ADC
ADCENPEN=                   0. / End entrance prism angle of ADC
ADCENPME=                   0. / Mean entrance prism angle of ADC
ADCEXPST=                   0. / Start exit prism angle of ADC
ADCEXPEN=                   0. / End exit prism angle of ADC
ADCEXPME=                   0. / Mean exit prism angle of ADC
ADCWLEN1=                   0. / Lower wavelength for ADC calculation
ADCWLEN2=                   0. / Upper wavelength for ADC calculation
DETRO1X = $roiX                / ROI 1 X start
DETRO1XS= $roiXSize            / ROI 1 X size
DETRO1Y = $roiY                / ROI 1 Y start
DETRO1YS= $roiYSize            / ROI 1 Y size
`),
  ...AIRMASS,
  ...cards(`
PROP_MD =                    F / Proprietary Metadata
RELEASE = $release             / End of proprietary period YYYY-MM-DD
`),
];

/** One amplifier extension (GMOS/N20150216S0142 HDU 1). */
const GMOS_EXTENSION: CardDef[] = [
  ...IMAGE_EXTENSION_START,
  ...cards(`
BZERO   =                32768 / offset data range to that of unsigned short
BSCALE  =                    1 / default scaling factor
INHERIT =                    F / inherit the primary header
DATATYPE= 'Intensity'          / Type of Data
`),
  ...WCS,
  ...cards(`
RADECSYS= 'FK5'                / R.A./DEC. coordinate system reference
EQUINOX =                2000. / Equinox of coordinate system
MJD-OBS = $mjdObs              / MJD of start of obseration
CCDNAME = $ccdname             / CCD chip name(s)
AMPNAME = $ampname             / Amplifier name(s)
GAIN    = $gain                / Amplifier gain
RDNOISE = $rdnoise             / Readout noise
CCDSIZE = $ccdsize             / CCD chip size
CCDSUM  = $ccdsum              / CCD sum
CCDSEC  = $ccdsec              / CCD section(s)
DETSEC  = $detsec              / Detector section(s)
DATASEC = $datasec             / Data section(s)
BIASSEC = $biassec             / Bias section(s)
FRMNAME = 'dhsFrame'           / Name assigned to a frame of data.
FRAMEID = $frameid             / Frame Id
DATATYP = ''                   / Type of data frame
`),
];

export interface GmosAmplifier {
  ccd: number; // 0, 1, 2
  name: string; // AMPNAME
  /** Unbinned first column of the amplifier on its CCD, 0-based. */
  x: number;
  /** The overscan is read before the data (BIASSEC [1:32]) rather than after. */
  overscanFirst: boolean;
  gain: number;
  readNoise: number;
}

export interface GmosDetector {
  id: string;
  site: Site;
  /** ISO dates, inclusive start, exclusive end. */
  from: string;
  until: string;
  detector: string;
  dettype: string;
  detid: string;
  dewar: string;
  conid: string;
  gmosdc: string;
  gmoscc: string;
  inport: number;
  timesys: string;
  ccdNames: readonly [string, string, string];
  /** Unbinned rows of a full frame, and the CCDSIZE/DETSIZE height. */
  rows: number;
  sizeRows: number;
  ampsPerCcd: number;
  amplifiers: readonly GmosAmplifier[];
  /** AMPINTEG for slow and fast read-out. */
  integration: { slow: number; fast: number };
  /** Arcseconds per unbinned pixel. */
  pixelScale: number;
  temperatures: readonly CardDef[];
}

const e2vTemperature: CardDef[] = [
  ...cards(`
DEW-TEMP= $dewarTemperature    / Dewar temperature (Celsius)
`),
];

const hamamatsuTemperatures: CardDef[] = [
  ...cards(`
ARRYTMPD=             -102.689 / Array temperature D (Celsius)
ARRYTMPA=               -96.05 / Array temperature A (Celsius)
ARRYTMPB=              -95.667 / Array temperature B (Celsius)
ARRYTMPC=               -94.89 / Array temperature C (Celsius)
ARRYTSET=               -102.7 / Array temperature Setpoint (Celsius)
`),
];

function amps(
  ccd: number,
  chip: string,
  names: readonly (readonly [string, number, boolean, number, number])[],
): GmosAmplifier[] {
  return names.map(([suffix, x, overscanFirst, gain, readNoise]) => ({
    ccd,
    name: `${chip}, ${suffix}`,
    x,
    overscanFirst,
    gain,
    readNoise,
  }));
}

/** The GMOS CCD sets, by site and era; the amplifiers in file order. */
export const GMOS_DETECTORS: readonly GmosDetector[] = [
  {
    id: "EEV-N",
    site: "N",
    from: "2001-01-01",
    until: "2011-11-21",
    detector: "GMOS + Red1",
    dettype: "SDSU II CCD",
    detid: "EEV9273-16-03EEV9273-20-04EEV9273-20-03",
    dewar: "Cryostat A",
    conid: "GMOS v8.0",
    gmosdc: "GMOS DC",
    gmoscc: "GMOS-N (V6-5)",
    inport: 5,
    timesys: "UT1",
    ccdNames: ["EEV 9273-16-03", "EEV 9273-20-04", "EEV 9273-20-03"],
    rows: 4608,
    sizeRows: 4644,
    ampsPerCcd: 1,
    amplifiers: [
      ...amps(0, "EEV 9273-16-03", [["right", 0, true, 2.04, 3.5]]),
      ...amps(1, "EEV 9273-20-04", [["right", 0, true, 2.32, 3.3]]),
      ...amps(2, "EEV 9273-20-03", [["left", 0, false, 2.19, 3.0]]),
    ],
    integration: { slow: 5000, fast: 1000 },
    pixelScale: 0.0727,
    temperatures: e2vTemperature,
  },
  {
    id: "e2vDD-N",
    site: "N",
    from: "2011-11-21",
    until: "2017-02-24",
    detector: "GMOS + e2v DD CCD42-90",
    dettype: "SDSU II e2v DD CCD42-90",
    detid: "e2v 10031-23-05,10031-01-03,10031-18-04",
    dewar: "Cryostat A",
    conid: "GMOS v8.0",
    gmosdc: "GMOS DC",
    gmoscc: "GMOS-N (V7-2)",
    inport: 5,
    timesys: "UT1",
    ccdNames: [
      "e2v DD ML2AR CCD42-90-1-F43 10031-23-05",
      "e2v DD ML2AR CCD42-90-1-F43 10031-01-03",
      "e2v DD ML2AR CCD42-90-1-F43 10031-18-04",
    ],
    rows: 4608,
    sizeRows: 4644,
    ampsPerCcd: 2,
    amplifiers: [
      ...amps(0, "e2v 10031-23-05", [
        ["right", 1024, true, 2.04, 3.5],
        ["left", 0, false, 2.14, 3.5],
      ]),
      ...amps(1, "e2v 10031-01-03", [
        ["right", 1024, true, 2.32, 3.3],
        ["left", 0, false, 2.22, 3.5],
      ]),
      ...amps(2, "e2v 10031-18-04", [
        ["left", 0, false, 2.19, 3.0],
        ["right", 1024, true, 2.18, 3.3],
      ]),
    ],
    integration: { slow: 5000, fast: 1000 },
    pixelScale: 0.0727,
    temperatures: e2vTemperature,
  },
  {
    id: "Hamamatsu-N",
    site: "N",
    from: "2017-02-24",
    until: "2100-01-01",
    detector: "GMOS-N + Hamamatsu",
    dettype: "S10892-N",
    detid: "BI13-20-4k-1,BI12-09-4k-2,BI13-18-4k-2",
    dewar: "Lab Cryostat",
    conid: "ARC-III",
    gmosdc: "gmosdc-6.10",
    gmoscc: "GMOS-N (V7-13)",
    inport: 5,
    timesys: "UTC",
    ccdNames: ["BI13-20-4k-1", "BI12-09-4k-2", "BI13-18-4k-2"],
    rows: 4224,
    sizeRows: 4224,
    ampsPerCcd: 4,
    amplifiers: [
      ...amps(0, "BI13-20-4k-1", [
        ["4", 0, false, 2.01, 8.02],
        ["3", 512, true, 1.95, 6.88],
        ["2", 1024, false, 1.97, 6.01],
        ["1", 1536, true, 1.91, 5.88],
      ]),
      ...amps(1, "BI12-09-4k-2", [
        ["4", 0, false, 2.03, 6.71],
        ["3", 512, true, 1.97, 6.34],
        ["2", 1024, false, 1.96, 5.39],
        ["1", 1536, true, 2.01, 5.86],
      ]),
      ...amps(2, "BI13-18-4k-2", [
        ["4", 0, false, 1.95, 6.1],
        ["3", 512, true, 1.95, 6.13],
        ["2", 1024, false, 1.89, 5.98],
        ["1", 1536, true, 1.95, 6.79],
      ]),
    ],
    integration: { slow: 10000, fast: 4000 },
    pixelScale: 0.0807,
    temperatures: hamamatsuTemperatures,
  },
  {
    id: "EEV-S",
    site: "S",
    from: "2001-01-01",
    until: "2014-06-01",
    detector: "GMOS + Blue1 + new CCD1",
    dettype: "SDSU II CCD",
    detid: "EEV2037-06-03EEV8194-19-04EEV8261-07-04",
    dewar: "Cryostat B",
    conid: "GMOS v6.0",
    gmosdc: "GMOS DC",
    gmoscc: "GMOS-CP (V6-1)",
    inport: 3,
    timesys: "UT1",
    ccdNames: ["EEV 2037-06-03", "EEV 8194-19-04", "EEV 8261-07-04"],
    rows: 4608,
    sizeRows: 4644,
    ampsPerCcd: 1,
    amplifiers: [
      ...amps(0, "EEV 2037-06-03", [["left", 0, false, 2.0, 3.2]]),
      ...amps(1, "EEV 8194-19-04", [["left", 0, false, 1.9, 3.5]]),
      ...amps(2, "EEV 8261-07-04", [["right", 0, true, 1.9, 3.1]]),
    ],
    integration: { slow: 5000, fast: 1000 },
    pixelScale: 0.073,
    temperatures: e2vTemperature,
  },
  {
    id: "Hamamatsu-S",
    site: "S",
    from: "2014-06-01",
    until: "2100-01-01",
    detector: "GMOS + Hamamatsu_new",
    dettype: "S10892",
    detid: "BI5-36-4k-2,BI11-33-4k-1,BI12-34-4k-1",
    dewar: "Hamamatsu Cryostat",
    conid: "ARC-III",
    gmosdc: "gmosdc-6.10",
    gmoscc: "GMOS-S (V7-13)",
    inport: 1,
    timesys: "UTC",
    ccdNames: ["BI5-36-4k-2", "BI11-33-4k-1", "BI12-34-4k-1"],
    rows: 4224,
    sizeRows: 4224,
    ampsPerCcd: 4,
    amplifiers: [
      ...amps(0, "BI5-36-4k-2", [
        ["1", 0, false, 1.852, 4.24],
        ["2", 512, true, 1.878, 3.98],
        ["3", 1024, false, 1.874, 4.02],
        ["4", 1536, true, 1.834, 4.11],
      ]),
      ...amps(1, "BI11-33-4k-1", [
        ["1", 0, false, 1.878, 3.86],
        ["2", 512, true, 1.84, 3.92],
        ["3", 1024, false, 1.933, 4.12],
        ["4", 1536, true, 1.908, 4.05],
      ]),
      ...amps(2, "BI12-34-4k-1", [
        ["1", 0, false, 1.652, 4.3],
        ["2", 512, true, 1.761, 4.18],
        ["3", 1024, false, 1.724, 4.07],
        ["4", 1536, true, 1.813, 4.22],
      ]),
    ],
    integration: { slow: 10000, fast: 4000 },
    pixelScale: 0.08,
    temperatures: hamamatsuTemperatures,
  },
];

// --- NIRI ------------------------------------------------------------------------------

const NIRI_PHU: CardDef[] = [
  ...PRIMARY_START,
  ...TELESCOPE,
  ...cards(`
ARRAYID = '47911'              / Array identification
ARRAYTYP= 'ALADDIN_II'         / Array type
CAMERA  = 'f6'                 / NIRI camera (f6|f14|f32)
COADDS  = $coadds              / Number of coadds summed
DATE-OBS= $dateObs             / Observation date (UT)
EXPTIME = $exptime             / Exposure time (s) for each frame
FILTER1 = 'open'               / Filter 1 name
FILTER2 = 'open'               / Filter 2 name
FILTER3 = 'Pupil38_G5207'      / Pupil mask, grism, or filter name
FOCUSNAM= 'INDEF'              / Focus position name
FOCUSPOS=                 -3.6 / Focus stage position in mm
FPMASK  = 'f6-cam_G5208'       / Focal plane mask name
BEAMSPLT= 'f6'                 / Beam splitter position name
WINDCOVR= 'open'               / Window cover position name (open|closed)
FRMSPCYC=                    2 / Frames per cycle,1=sep,2=stare
HDRTIMIN= 'INDEF'              / Header info updated before, after or both
INPORT  =                    3 / Number of ISS port where NIRI was located
LNRS    =                    1 / Number of non-destructive read pairs
MODE    = 'STARE'              / Stare or sep
NDAVGS  =                   16 / Number of digital averages
PVIEW   = 'out'                / Pupil viewer position name (in|out)
TDETABS =               33.086 / Science detector temperature (K)
TIME    = $timeObs             / Beginning of Observation (UT)
TIME-OBS= $timeObs             / Beginning of Observation (UT)
TMOUNT  =               22.046 / Mount temperature (K)
UCODENAM= 'gnAII_1024xSU01_4u' / Array microcode file name
UCODETYP= 'RDD'                / Array microcode version
VDDCL1  =               -1.161 / VDDCL hi detector clock voltage
VDDCL2  =               -3.497 / VDDCL lo detector clock voltage
VDDUC   = $vdduc               / VDDUC detector bias voltage
VDET    = $vdet                / VDETCOM detector bias voltage
VGGCL1  =                -4.88 / VGGCL lo detector clock voltage
VGGCL2  =               -2.704 / VGGCL hi detector clock voltage
VSET    =               -1.871 / Vset detector bias voltage
A_TDETAB=               33.086 / Science detector temperature (K) (post exposure
A_TMOUNT=               21.999 / Mount temperature (K) (post exposure)
A_VDDCL1=               -1.161 / VDDCL hi detector clock voltage (post exposure)
A_VDDCL2=               -3.497 / VDDCL lo detector clock voltage (post exposure)
A_VDDUC = $vdduc               / VDDUC detector bias voltage (post exposure)
A_VDET  = $vdet                / VDETCOM detector bias voltage (post exposure)
A_VGGCL1=                -4.88 / VGGCL lo detector clock voltage (post exposure)
A_VGGCL2=               -2.704 / VGGCL hi detector clock voltage (post exposure)
A_VSET  =               -1.871 / Vset detector bias voltage (post exposure)
UTEND   = $utend               / End of Observation (UT)
OBSEPOCH= $obsepoch            / Epoch at start of exposure
`),
  ...AIRMASS,
  ...WCS,
  ...cards(`
MJD_OBS = $mjdObs              / Mean Julian day of observation
INTEGRIT= 'OK'                 / Observation status (OK|STOP|ABORT)
RELEASE = $release             / End of proprietary period YYYY-MM-DD
`),
];

const NIRI_EXTENSION: CardDef[] = [
  ...IMAGE_EXTENSION_START,
  ...WCS,
  ...cards(`
MJD_OBS = $mjdObs              / Mean Julian day of observation
FRAME   = 'FK5'                / Target coordinate system
DROINUM =                    0 / Which Region of Interest
LOWROW  = $lowrow              / Start row of region of interest
LOWCOL  =                    0 / Start col of region of interest
HIROW   = $hirow               / End row of region of interest
HICOL   = $hicol               / End col of region of interest
FRMNAME = $frmname             / Frame name
FRAMEID = '0'                  / Frame ID
DATATYP = ''                   / Data type
`),
];

// --- F2 --------------------------------------------------------------------------------

const F2_PHU: CardDef[] = [
  ...PRIMARY_START,
  ...TELESCOPE,
  ...cards(`
PREIMAGE=                    F / MOS pre-imaging
DATE-OBS= $dateObs             / UT date of observation (YYYY-MM-DD)
TIME-OBS= $timeObs             / Time of observation
READMODE= 'Bright'             / Detector Readout mode
NREADS  =                    1 / Number of reads
`),
  ...AIRMASS,
  ...cards(`
PROP_MD =                    F / Proprietary Metadata
RELEASE = $release             / End of proprietary period YYY-MM-DD
CHA_HTPW=                   40 / LS332-A Heater Power
CHA_RANG=                    0 / LS332-A Heater Range
CHB_HTPW=                    0 / LS332-B Heater Power
CHB_HTST=                    0 / LS332-B Heater Status 1=On/0=Off
COADDS  =                    1 / Number of coadds
DCKRSTEP=                 -249 / Decker Step Count
FIL1STEP=                 -400 / Filter Wheel 1 Step Count
FIL2STEP=                56200 / Filter Wheel 2 Step Count
FOCUSTEP=                 1100 / Detector Focus Position Step Count
GRORDER =                    1 / Grating order
GRSMSTEP=               -28075 / Grism Wheel Step Count
INPORT  =                    5 / ISS port where F-2 installed
LNRS    =                    1 / Number of non-destructive read pairs
LYOTSTEP=                -5720 / Lyot Wheel Step Count
MOSSTEP =              -119650 / Mos Step Count
WINSTEP =                    0 / Window Step Count
BIASGATE=     3.50699996948242 / Bias Gate (V)
BIASPWR =      4.9689998626709 / Bias Power (V)
BIASVCC =     5.00299978256226 / Bias VCC (V)
BIASVRES=    0.751999974250793 / Bias Vreset (V)
CAMVAC  = 1.45000001339213E-07 / Camera Dewar Pressure (Torr)
CHA_APWR=                   0. / LS332-A Applied Power
CHA_SETP=                  50. / LS332-A Set Point Temp. (K)
CHB_APWR=                  62. / LS332-B Applied Power
CHB_SETP=                  80. / LS332-B Set Point Temp. (K)
EXPTIME = $exptime             / Exposure time (S)
GAIN    =     4.44000005722046 / Detector Gain (e/ADU)
GRWLEN  =                   0. / Central wavelength (microns)
LVDTVLTS=    -1.25689995288849 / Detector Focus LVDT Voltage (V)
MJD-OBS = $mjdObs              / MJD at start of observation
MOSVAC  = 2.05999995728234E-07 / MOS Dewar Pressure (Torr)
OBSEPOCH= $obsepoch            / Epoch at observation start
PIXSCALE=    0.181240007281303 / Plate scale in arcsec/pixel (0.1879)
RDNOISE =                   0. / Detector Readnoise (ADU) for CDS Reads
TEMP_CH1=     79.8270034790039 / MOS Coldhead Stage 1 Temp (K)
TEMP_CH2=     24.6550006866455 / MOS Coldhead Stage 2 Temp (K)
TEMP_CH3=       11.08899974823 / MOS Bench NC Diode Temp (K)
TEMP_CH4=     103.860000610352 / MOS Bench LS Diode Temp (K)
TEMP_CH5=     65.5149993896484 / Camera Coldhead Stage 1 Temp (K)
TEMP_CH6=     42.2929992675781 / Detector Cold Finger Temp (K)
TEMP_CH7=     96.0250015258789 / Camera Bench Between Mirrors Temp (K)
TEMP_CH8=      80.447998046875 / Detector Copper Frame Temp (K)
TEMP_CHA=     96.2570037841797 / Bench Near Detector Temp (K)
TEMP_CHB=                  80. / Detector Fanout Copper Block Temp (K)
CHA_PID = '+0500.0,+0025.0,+0' / LS332-A PID Parameters
CHB_PID = '+0200.0,+0025.0,+2' / LS332-B PID Parameters
DECKER  = 'Open'               / Decker Position
DETGRADE= 'Science'            / Detector Grade (Sci/Eng)
DETID   = '109'                / Rockwell Detector ID Number
DETTYPE = 'Hawaii-2 2048'      / Detector Type (Rockwell; HgCdTe 2048x2048)
DHSLABEL= $fileBase            / DHS Label
F2CC    = '1.1'                / Version of the software running on the CC
F2DC    = '1.1'                / Version of the MCE4 software
FILT1ID = 'null'               / Filter 1 barcode
FILT2ID = 'null'               / Filter 2 barcode
FILTER  = $f2filter            / Effective Filter Position
FILTER1 = 'Open'               / Filter Wheel 1 Position
FILTER2 = 'Open'               / Filter Wheel 2 Position
FOCUS   = 'Undefined'          / Detector Focus Position
GRISM   = 'Open'               / Grism Wheel Position
LYOT    = 'f/16_G5830'         / Lyot Wheel Position
MASKID  = '-1'                 / Barcode of Mos Wheel Position in Beam
MASKNAME= 'None'               / Maskname of Mos Wheel Position in Beam
MASKTYPE= '0'                  / MOS MODE
MOSPOS  = 'Open'               / Mos Position
MOSSLT01= '30500001'           / Fixed Barcode Position 01
MOSSLT02= '30500002'           / Fixed Barcode Position 02
MOSSLT03= '30500003'           / Fixed Barcode Position 03
MOSSLT04= '30500004'           / Fixed Barcode Position 04
MOSSLT05= '30500005'           / Fixed Barcode Position 05
MOSSLT06= '30500006'           / Fixed Barcode Position 06
TIMESYS = 'UTC'                / Time system used
UTEND   = $utend               / UT at observation end
UTSTART = $timeObs             / UT at observation start
WINDOW  = 'Open'               / Window Position
`),
];

/** The 3-D science extension (F2/S20171226S0358 HDU 1), with its 32 preamp cards. */
const F2_EXTENSION: CardDef[] = [
  ...IMAGE_EXTENSION_START,
  ...cards(`
AXISLAB1= 'Xaxis'              / Axis label
AXISLAB2= 'Yaxis'              / Axis label
AXISLAB3= 'Extensions'         / Axis label
`),
  ...Array.from({ length: 32 }, (_, i): CardDef => [
    `AMPDAC${String(i + 1).padStart(2, "0")}`,
    real(180),
    `Preamp ${String(i + 1).padStart(2, "0")} voltage (in bits)`,
  ]),
  ...cards(`
CD1_1   = $cd11                / WCS matrix element (1,1) in (deg/pix)
CD1_2   = $cd12                / WCS matrix element (1,2) in (deg/pix)
CD2_1   = $cd21                / WCS matrix element (2,1) in (deg/pix)
CD2_2   = $cd22                / WCS matrix element (2,2) in (deg/pix)
CD3_3   =                   1. / WCS matrix element (3,3) in (deg/pix)
CRPIX1  = $crpix1              / Pixel at which reference applies
CRPIX2  = $crpix2              / Pixel at which reference applies
CRVAL1  = $crval1              / Ref pixel value in degrees
CRVAL2  = $crval2              / Ref pixel value in degrees
MJD-OBS = $mjdObs              / MJD at start of observation
INHERIT =                    F / Inherits primary header
CTYPE1  = 'RA---TAN'           / RA---TAN X-axis
CTYPE2  = 'DEC--TAN'           / DEC--TAN Y-axis
RADECSYS= 'FK5'                / R.A./DEC. coordinate system reference
FRMNAME = ' 1 of 1'            / Name assigned to a frame of data.
FRAMEID = '0'                  / Frame ID
DATATYP = 'Intensity'          / Type of data frame
`),
];

// --- GNIRS -----------------------------------------------------------------------------

const GNIRS_PHU: CardDef[] = [
  ...PRIMARY_START,
  ...TELESCOPE,
  ...cards(`
INPORT  =                    3 / Number of ISS port where GNIRS was located
ARRAYID = 'SN7638228.1.2'      / ID # of array
ARRAYTYP= 'ALADDIN_III_1024'   / ALADDIN II or ALADDIN III
DATE-OBS= $dateObs             / UT Date of observation (YYYY-MM-DD)
TIME-OBS= $timeObs             / Time of observation
UTSTART = $timeObs             / UT at observation start
DETBIAS = $detbias             / Achieved Detector Bias
FILTER1 = 'Open'               / filter wheel 1 position
FW1_ENG =                    0 / fw1 Eng position (steps)
FILTER2 = 'Open'               / filter wheel 2 position
FW2_ENG =                12950 / fw2 eng psition (steps)
CAMERA  = 'ShortBlue_G5540'    / Camera position
CAM_ENG =               101700 / Camera eng psition (steps)
SLIT    = 'Acq_G5530'          / slit position
SLIT_ENG=               317400 / slit Eng Position (steps)
DECKER  = 'Acq_G5531'          / decker position
DKR_ENG =                52000 / decker Eng position (steps)
GRATING = '32/mmSB_G5533'      / grating position
GR_ENG  =                83683 / grating Eng Position (steps)
GRATWAVE=               1.6499 / grating wavelength
GRATORD =                    4 / order of grating
GRATTILT=               6.1887 / grating tilt
PRISM   = 'MIR_G5537'          / prism position
PRSM_ENG=               103375 / Prism Eng position (steps)
ACQMIR  = 'Out'                / acquisition mirror position
COVER   = 'Open'               / cover position
FOCUS   = '** ENG 130000 **'   / focus position
FCS_ENG =               130000 / Focus Eng position (steps)
UTEND   = $utend               / UT at observation end
OBSEPOCH= $obsepoch            / Epoch at start of exposure
`),
  ...AIRMASS,
  ...WCS,
  ...cards(`
MJD_OBS = $mjdObs              / MJD of start of obseration
UCODEPTH= './tpSource/ucode/NAAC/' / Path for ucode directory
UCODENAM= 'gnAIII_1024xSU01_4u' / Name of ucode file loaded
COADDS  = $coadds              / # of coadded images
LNRS    =                    1 / # of fowler samples
NDAVGS  =                   16 / # of digital averages
ROWS    =                 1024 / array rows
P_MODE  = 'STARE'              / proc mode (stare, sep)
COLS    =                 1024 / array cols
EXPTIME = $exptime             / integration time (seconds)
MIN_INT =             17.52448 / minimum integration time (seconds)
FRMS_EXP=                    2
DSRDTEMP=                  27. / desired detector temperature (K)
DETTEMP =                  27. / detector temperature (K)
FOOT_PWR=                   0. / detector foot heater power
RELEASE = $release             / End of proprietary period YYYY-MM-DD
`),
];

const GNIRS_EXTENSION: CardDef[] = [
  ...IMAGE_EXTENSION_START,
  ...cards(`
DROINUM =                    0 / roi number
LOWROW  = $lowrow              / y min of region
LOWCOL  =                    0 / Start col of region of interest
HIROW   = $hirow               / End row of region of interest
HICOL   = $hicol               / End col of region of interest
FRMNAME = $frmname             / Name assigned to a frame of data.
FRAMEID = '0'                  / Frame ID
DATATYPE= ''
`),
];

// --- instruments -----------------------------------------------------------------------

export interface InstrumentDef {
  family: Family;
  /** INSTRUME per site. */
  names: Partial<Record<Site, string>>;
  /** Sites and eras (ISO dates) where the instrument was on the telescope. */
  eras: readonly { site: Site; from: string; until: string }[];
  phu: readonly CardDef[];
  extension: readonly CardDef[];
  /** Science array: BITPIX, columns, rows, and a third axis of 1 (F2). */
  bitpix: 16 | 32 | -32;
  columns: number;
  rows: number;
  thirdAxis: boolean;
  /** Arcseconds per pixel, for the WCS. */
  pixelScale: number;
  guider: "OIWFS" | "PWFS2";
  /** Seconds between the TCS time (UT) and the start of the exposure (TIME-OBS). */
  startDelay: number;
  /** Read-out and overheads between frames, seconds. */
  overhead: number;
}

export const INSTRUMENTS: Record<Family, InstrumentDef> = {
  GMOS: {
    family: "GMOS",
    names: { N: "GMOS-N", S: "GMOS-S" },
    eras: [
      { site: "N", from: "2001-08-01", until: "2100-01-01" },
      { site: "S", from: "2002-01-01", until: "2100-01-01" },
    ],
    phu: GMOS_PHU,
    extension: GMOS_EXTENSION,
    bitpix: 16,
    columns: 0, // per amplifier, from the detector
    rows: 0,
    thirdAxis: false,
    pixelScale: 0.0727,
    guider: "OIWFS",
    startDelay: 37.5,
    overhead: 45,
  },
  NIRI: {
    family: "NIRI",
    names: { N: "NIRI" },
    eras: [{ site: "N", from: "2001-01-01", until: "2100-01-01" }],
    phu: NIRI_PHU,
    extension: NIRI_EXTENSION,
    bitpix: -32,
    columns: 1024,
    rows: 1024,
    thirdAxis: false,
    pixelScale: 0.1171,
    guider: "PWFS2",
    startDelay: 0.5,
    overhead: 12,
  },
  F2: {
    family: "F2",
    names: { S: "F2" },
    eras: [{ site: "S", from: "2014-01-01", until: "2100-01-01" }],
    phu: F2_PHU,
    extension: F2_EXTENSION,
    bitpix: 32,
    columns: 2048,
    rows: 2048,
    thirdAxis: true,
    pixelScale: 0.1792,
    guider: "PWFS2",
    startDelay: 0.5,
    overhead: 15,
  },
  GNIRS: {
    family: "GNIRS",
    names: { N: "GNIRS", S: "GNIRS" },
    eras: [
      { site: "S", from: "2004-01-01", until: "2006-05-01" },
      { site: "N", from: "2010-10-01", until: "2100-01-01" },
    ],
    phu: GNIRS_PHU,
    extension: GNIRS_EXTENSION,
    bitpix: -32,
    columns: 1024,
    rows: 1022,
    thirdAxis: false,
    pixelScale: 0.15,
    guider: "PWFS2",
    startDelay: 0,
    overhead: 12,
  },
};

// --- observation templates -------------------------------------------------------------

export type Pointing =
  /** The sequence's science target, sidereal, FK5. */
  | "target"
  /** The dome, telescope parked at zenith (AZEL_TOPO). */
  | "zenith"
  /** Blank sky at dusk, near zenith, sidereal. */
  | "twilight"
  /** Daytime, the TCS not connected: every telescope value -9999 or "No Value". */
  | "offline";

export interface FrameTemplate {
  /** bias, dark, flat, twilight, arc, acquisition, science, standard. */
  kind: string;
  obstype: "OBJECT" | "BIAS" | "DARK" | "FLAT" | "ARC";
  obsclass: "science" | "acq" | "acqCal" | "partnerCal" | "progCal" | "dayCal";
  pointing: Pointing;
  /** A fixed OBJECT (Bias, Dark, GCALflat, CuAr, Twilight); else the target's name. */
  object?: string;
  /** Requested exposure times to choose from, seconds. */
  exptime: readonly number[];
  /** How many frames in a row: [min, max]. */
  count: readonly [number, number];
  /** The GCAL lamp, when the frame uses one. */
  gcal?: {
    lamp: string;
    shutter: "OPEN" | "CLOSED";
    filter: string;
    diffuser: string;
  };
  set?: Overrides;
}

export interface SequenceTemplate {
  family: Family;
  /** imaging, longslit, mos, ifu, xd, or a calibration set. */
  name: string;
  /** Calibrations are taken in the day (or at dusk) under the site's CAL program. */
  daytime: boolean;
  weight: number;
  /** Instrument configurations; one is picked per sequence and shared by its frames. */
  variants: readonly Overrides[];
  /** GMOS binnings (x, y) to pick from. */
  binning?: readonly (readonly [number, number])[];
  /** GMOS unbinned rows read: full frame or the central spectrum region. */
  roi?: "full" | "central-spectrum";
  /** GMOS read-out: slow for science, fast for acquisitions. */
  readout?: "slow" | "fast";
  frames: readonly FrameTemplate[];
}

const QH = {
  lamp: "QH",
  shutter: "CLOSED",
  filter: "ND2.0",
  diffuser: "IR",
} as const;
const CUAR = {
  lamp: "CuAr",
  shutter: "CLOSED",
  filter: "CLEAR",
  diffuser: "VISIBLE",
} as const;
const AR = {
  lamp: "Ar",
  shutter: "CLOSED",
  filter: "CLEAR",
  diffuser: "IR",
} as const;
const IR_ON = {
  lamp: "IRhigh",
  shutter: "OPEN",
  filter: "ND2.0",
  diffuser: "IR",
} as const;
const IR_OFF = {
  lamp: "IRhigh",
  shutter: "CLOSED",
  filter: "ND2.0",
  diffuser: "IR",
} as const;

/** GMOS filters: FILTER1/FILTER2 with barcodes and the effective wavelength (Å) per site. */
const GMOS_FILTERS: Record<Site, readonly Overrides[]> = {
  N: [
    { FILTER2: "g_G0301", FILTID2: 20000001, WAVELENG: real(4750) },
    { FILTER2: "r_G0303", FILTID2: 20000003, WAVELENG: real(6300) },
    { FILTER2: "i_G0302", FILTID2: 20000002, WAVELENG: real(7800) },
    { FILTER2: "z_G0304", FILTID2: 20000004, WAVELENG: real(9250) },
    { FILTER2: "Ha_G0310", FILTID2: 20000010, WAVELENG: real(6550) },
  ],
  S: [
    { FILTER2: "g_G0325", FILTID2: 20000025, WAVELENG: real(4750) },
    { FILTER2: "r_G0326", FILTID2: 20000026, WAVELENG: real(6300) },
    { FILTER2: "i_G0327", FILTID2: 20000027, WAVELENG: real(7800) },
    { FILTER2: "z_G0328", FILTID2: 20000028, WAVELENG: real(9250) },
    { FILTER2: "u_G0332", FILTID2: 20000032, WAVELENG: real(3500) },
  ],
};

/** GMOS gratings per site with a typical central wavelength (nm) and tilt. */
const GMOS_GRATINGS: Record<Site, readonly Overrides[]> = {
  N: [
    {
      GRATING: "B600+_G5307",
      GRATID: 30000018,
      CENTWAVE: real(520),
      GRTILT: real(54.9537),
    },
    {
      GRATING: "R400+_G5305",
      GRATID: 30000016,
      CENTWAVE: real(700),
      GRTILT: real(49.3),
    },
    {
      GRATING: "B1200+_G5301",
      GRATID: 30000013,
      CENTWAVE: real(450),
      GRTILT: real(47.6678),
    },
    {
      GRATING: "R831+_G5302",
      GRATID: 30000004,
      CENTWAVE: real(750),
      GRTILT: real(51.6135),
    },
    {
      GRATING: "R150+_G5308",
      GRATID: 30000021,
      CENTWAVE: real(720),
      GRTILT: real(61.4701),
    },
  ],
  S: [
    {
      GRATING: "B600+_G5323",
      GRATID: 30000014,
      CENTWAVE: real(520),
      GRTILT: real(55.8193),
    },
    {
      GRATING: "R400+_G5325",
      GRATID: 30000019,
      CENTWAVE: real(750),
      GRTILT: real(58.0106),
    },
    {
      GRATING: "B1200+_G5321",
      GRATID: 30000016,
      CENTWAVE: real(480),
      GRTILT: real(47.3894),
    },
    {
      GRATING: "R831+_G5322",
      GRATID: 30000017,
      CENTWAVE: real(800),
      GRTILT: real(52.2),
    },
    {
      GRATING: "R150+_G5326",
      GRATID: 30000020,
      CENTWAVE: real(730),
      GRTILT: real(61.4701),
    },
  ],
};

/** The long-slit masks and their barcodes. */
export const GMOS_SLITS: readonly Overrides[] = [
  { MASKNAME: "0.5arcsec", MASKID: 10005352 },
  { MASKNAME: "0.75arcsec", MASKID: 10005353 },
  { MASKNAME: "1.0arcsec", MASKID: 10005354 },
  { MASKNAME: "1.5arcsec", MASKID: 10005355 },
];

export const GMOS_IFUS: readonly Overrides[] = [
  { MASKNAME: "IFU-2", MASKID: 10000007 },
  { MASKNAME: "IFU-R", MASKID: 10000009 },
  { MASKNAME: "IFU-B", MASKID: 10000008 },
];

/** The order-blocking filter for red settings. */
const GG455: Record<Site, string> = { N: "GG455_G0305", S: "GG455_G0329" };

/** Per site: imaging, spectroscopy (grating + order filter) variants; archive.ts crosses them with masks. */
export function gmosVariants(site: Site): {
  imaging: readonly Overrides[];
  spectroscopy: readonly Overrides[];
} {
  return {
    imaging: GMOS_FILTERS[site],
    spectroscopy: GMOS_GRATINGS[site].map((g) => ({
      ...g,
      GRWLEN: g.CENTWAVE ?? null,
      GRORDER: 1,
      FILTER1: (g.CENTWAVE as Real).real >= 700 ? GG455[site] : "open1-6",
      FILTID1: (g.CENTWAVE as Real).real >= 700 ? 20000005 : 20000018,
      WAVELENG: real((g.CENTWAVE as Real).real * 10),
    })),
  };
}

const SPECTRUM_MASK: Overrides = { MASKTYP: 1, MASKLOC: 0 };

export const SEQUENCES: readonly SequenceTemplate[] = [
  // GMOS -----------------------------------------------------------------------------
  {
    family: "GMOS",
    name: "imaging",
    daytime: false,
    weight: 6,
    variants: [], // filters per site, in archive.ts
    binning: [[2, 2]],
    roi: "full",
    readout: "slow",
    frames: [
      {
        kind: "science",
        obstype: "OBJECT",
        obsclass: "science",
        pointing: "target",
        exptime: [60, 120, 150, 300],
        count: [3, 6],
      },
    ],
  },
  {
    family: "GMOS",
    name: "longslit",
    daytime: false,
    weight: 5,
    variants: [],
    binning: [
      [2, 2],
      [1, 2],
      [2, 1],
    ],
    roi: "central-spectrum",
    readout: "slow",
    frames: [
      // Acquisition: an image through the slit (N20120105S0344).
      {
        kind: "acquisition",
        obstype: "OBJECT",
        obsclass: "acq",
        pointing: "target",
        exptime: [10, 30, 60],
        count: [1, 2],
        set: {
          GRATING: "MIRROR",
          GRATID: 30000008,
          CENTWAVE: real(0),
          GRWLEN: real(0),
          GRORDER: 0,
          GRTILT: real(65),
          FILTER1: "open1-6",
          FILTID1: 20000018,
        },
      },
      {
        kind: "science",
        obstype: "OBJECT",
        obsclass: "science",
        pointing: "target",
        exptime: [600, 900, 1200, 1800],
        count: [2, 4],
      },
      {
        kind: "flat",
        obstype: "FLAT",
        obsclass: "partnerCal",
        pointing: "target",
        object: "GCALflat",
        exptime: [1, 3, 6],
        count: [1, 1],
        gcal: QH,
      },
      {
        kind: "arc",
        obstype: "ARC",
        obsclass: "progCal",
        pointing: "target",
        object: "CuAr",
        exptime: [20, 50, 90],
        count: [1, 1],
        gcal: CUAR,
      },
    ],
  },
  {
    family: "GMOS",
    name: "mos",
    daytime: false,
    weight: 2,
    variants: [],
    binning: [[2, 2]],
    roi: "full",
    readout: "slow",
    frames: [
      {
        kind: "science",
        obstype: "OBJECT",
        obsclass: "science",
        pointing: "target",
        exptime: [900, 1200, 1800],
        count: [2, 4],
      },
      {
        kind: "flat",
        obstype: "FLAT",
        obsclass: "partnerCal",
        pointing: "target",
        object: "GCALflat",
        exptime: [2, 5],
        count: [1, 1],
        gcal: QH,
      },
      {
        kind: "arc",
        obstype: "ARC",
        obsclass: "dayCal",
        pointing: "zenith",
        object: "CuAr",
        exptime: [30, 60],
        count: [1, 1],
        gcal: CUAR,
      },
    ],
  },
  {
    family: "GMOS",
    name: "ifu",
    daytime: false,
    weight: 2,
    variants: [],
    binning: [
      [1, 1],
      [2, 1],
    ],
    roi: "full",
    readout: "slow",
    frames: [
      {
        kind: "science",
        obstype: "OBJECT",
        obsclass: "science",
        pointing: "target",
        exptime: [900, 1200, 2000],
        count: [2, 3],
      },
      {
        kind: "flat",
        obstype: "FLAT",
        obsclass: "partnerCal",
        pointing: "target",
        object: "GCALflat",
        exptime: [30, 60],
        count: [1, 1],
        gcal: QH,
      },
      {
        kind: "arc",
        obstype: "ARC",
        obsclass: "progCal",
        pointing: "target",
        object: "CuAr",
        exptime: [180, 300],
        count: [1, 1],
        gcal: CUAR,
      },
    ],
  },
  {
    family: "GMOS",
    name: "biases",
    daytime: true,
    weight: 2,
    variants: [{ SHUTTER: "CLOSED" }],
    binning: [
      [1, 1],
      [2, 2],
    ],
    roi: "full",
    readout: "slow",
    frames: [
      {
        kind: "bias",
        obstype: "BIAS",
        obsclass: "dayCal",
        pointing: "zenith",
        object: "Bias",
        exptime: [0],
        count: [3, 5],
      },
    ],
  },
  {
    family: "GMOS",
    name: "darks",
    daytime: true,
    weight: 0.4,
    variants: [{ SHUTTER: "CLOSED" }],
    binning: [[1, 1]],
    roi: "full",
    readout: "slow",
    frames: [
      // N20150929S0013: taken with the telescope offline, RA/DEC -9999.
      {
        kind: "dark",
        obstype: "DARK",
        obsclass: "dayCal",
        pointing: "offline",
        object: "Dark",
        exptime: [600, 1800],
        count: [1, 3],
      },
    ],
  },
  {
    family: "GMOS",
    name: "twilight-flats",
    daytime: true,
    weight: 1.5,
    variants: [],
    binning: [[2, 2]],
    roi: "full",
    readout: "slow",
    frames: [
      {
        kind: "twilight",
        obstype: "OBJECT",
        obsclass: "dayCal",
        pointing: "twilight",
        object: "Twilight",
        exptime: [1, 3, 5, 10],
        count: [3, 5],
      },
    ],
  },
  {
    family: "GMOS",
    name: "arcs",
    daytime: true,
    weight: 1.5,
    variants: [],
    binning: [
      [2, 2],
      [1, 2],
    ],
    roi: "central-spectrum",
    readout: "slow",
    frames: [
      {
        kind: "arc",
        obstype: "ARC",
        obsclass: "dayCal",
        pointing: "zenith",
        object: "CuAr",
        exptime: [20, 50],
        count: [1, 2],
        gcal: CUAR,
      },
    ],
  },
  // NIRI -----------------------------------------------------------------------------
  {
    family: "NIRI",
    name: "imaging",
    daytime: false,
    weight: 5,
    variants: [
      {
        CAMERA: "f6",
        BEAMSPLT: "f6",
        FILTER1: "Kprime_G0206",
        FILTER2: "open",
        FILTER3: "Pupil38_G5207",
        WAVELENG: real(21200),
      },
      {
        CAMERA: "f6",
        BEAMSPLT: "f6",
        FILTER1: "K_G0204",
        FILTER2: "H2v=1-0S1_G0216",
        FILTER3: "Pupil38_G5207",
        WAVELENG: real(21220),
      },
      {
        CAMERA: "f6",
        BEAMSPLT: "f6",
        FILTER1: "J_G0202",
        FILTER2: "open",
        FILTER3: "Pupil38_G5207",
        WAVELENG: real(12500),
      },
      {
        CAMERA: "f32",
        BEAMSPLT: "f32",
        FILTER1: "PK50_G0201",
        FILTER2: "open",
        FILTER3: "CH4long_G0229",
        WAVELENG: real(17000),
      },
      {
        CAMERA: "f32",
        BEAMSPLT: "f6",
        FILTER1: "Mprime_G0208",
        FILTER2: "open",
        FILTER3: "Pupil38_G5207",
        WAVELENG: real(46800),
        LNRS: 1,
        NDAVGS: 1,
      },
    ],
    frames: [
      {
        kind: "science",
        obstype: "OBJECT",
        obsclass: "science",
        pointing: "target",
        exptime: [15.001, 30.001, 60.001],
        count: [4, 9],
      },
    ],
  },
  {
    family: "NIRI",
    name: "longslit",
    daytime: false,
    weight: 3,
    variants: [
      {
        FILTER1: "Ksort_G0211",
        FILTER3: "Kgrism_G5204",
        FPMASK: "f6-6pix_G5213",
        WAVELENG: real(22000),
      },
      {
        FILTER1: "Jsort_G0209",
        FILTER3: "Jgrism_G5202",
        FPMASK: "f6-6pix_G5213",
        WAVELENG: real(12000),
      },
    ],
    frames: [
      {
        kind: "science",
        obstype: "OBJECT",
        obsclass: "science",
        pointing: "target",
        exptime: [120.001, 300.001],
        count: [2, 4],
        set: { LNRS: 16, NDAVGS: 16 },
      },
      {
        kind: "flat",
        obstype: "FLAT",
        obsclass: "partnerCal",
        pointing: "target",
        object: "GCALflat",
        exptime: [0.901, 2.001],
        count: [1, 2],
        gcal: IR_ON,
      },
      {
        kind: "arc",
        obstype: "ARC",
        obsclass: "partnerCal",
        pointing: "target",
        object: "Ar",
        exptime: [4.001, 15.001],
        count: [1, 1],
        gcal: AR,
      },
    ],
  },
  {
    family: "NIRI",
    name: "darks",
    daytime: true,
    weight: 1.5,
    variants: [
      { FILTER3: "blank", FILTER1: "PK50_G0201", WAVELENG: real(17000) },
    ],
    frames: [
      {
        kind: "dark",
        obstype: "DARK",
        obsclass: "dayCal",
        pointing: "zenith",
        object: "Dark",
        exptime: [10.001, 30.001, 60.001],
        count: [3, 5],
        set: { LNRS: 16, NDAVGS: 16 },
      },
    ],
  },
  {
    family: "NIRI",
    name: "lamp-flats",
    daytime: true,
    weight: 1.5,
    variants: [
      {
        FILTER1: "Kprime_G0206",
        FILTER2: "open",
        FILTER3: "Pupil38_G5207",
        WAVELENG: real(21200),
      },
      {
        FILTER1: "J_G0202",
        FILTER2: "open",
        FILTER3: "Pupil38_G5207",
        WAVELENG: real(12500),
      },
    ],
    frames: [
      {
        kind: "flat",
        obstype: "FLAT",
        obsclass: "dayCal",
        pointing: "zenith",
        object: "GCALflat",
        exptime: [5.001, 42.001],
        count: [2, 3],
        gcal: IR_ON,
      },
      {
        kind: "flat",
        obstype: "FLAT",
        obsclass: "dayCal",
        pointing: "zenith",
        object: "GCALflat",
        exptime: [5.001, 42.001],
        count: [2, 3],
        gcal: IR_OFF,
      },
    ],
  },
  // F2 -------------------------------------------------------------------------------
  {
    family: "F2",
    name: "imaging",
    daytime: false,
    weight: 4,
    variants: [
      { FILTER1: "J_G0802", FILTER2: "Open", WAVELENG: real(12500) },
      { FILTER1: "H_G0803", FILTER2: "Open", WAVELENG: real(16500) },
      { FILTER1: "K-long_G0812", FILTER2: "Open", WAVELENG: real(22000) },
      { FILTER1: "Open", FILTER2: "K-red_G0815", WAVELENG: real(23100) },
    ],
    frames: [
      {
        kind: "science",
        obstype: "OBJECT",
        obsclass: "science",
        pointing: "target",
        exptime: [3, 8, 20, 60],
        count: [4, 9],
      },
    ],
  },
  {
    family: "F2",
    name: "longslit",
    daytime: false,
    weight: 4,
    variants: [
      {
        FILTER1: "Open",
        FILTER2: "JH_G0809",
        GRISM: "JH_G5801",
        GRWLEN: real(1.39999997615814),
        WAVELENG: real(13900),
        DECKER: "Long_slit",
        MASKNAME: "4pix-slit",
        MOSPOS: "4pix-slit",
        MASKID: "30500004",
        MASKTYPE: "1",
      },
      {
        FILTER1: "Open",
        FILTER2: "HK_G0806_good",
        GRISM: "HK_G5802",
        GRWLEN: real(1.87000000476837),
        WAVELENG: real(18710),
        DECKER: "Long_slit",
        MASKNAME: "3pix-slit",
        MOSPOS: "3pix-slit",
        MASKID: "30500003",
        MASKTYPE: "1",
      },
      {
        FILTER1: "K-long_G0812",
        FILTER2: "Open",
        GRISM: "R3K_G5803",
        GRWLEN: real(2.20000004768372),
        WAVELENG: real(22000),
        DECKER: "Long_slit",
        MASKNAME: "2pix-slit",
        MOSPOS: "2pix-slit",
        MASKID: "30500002",
        MASKTYPE: "1",
      },
    ],
    frames: [
      // Acquisition through the slit (S20150103S0148): no grism.
      {
        kind: "acquisition",
        obstype: "OBJECT",
        obsclass: "acq",
        pointing: "target",
        exptime: [10, 20],
        count: [1, 2],
        set: {
          GRISM: "Open",
          FILTER1: "H_G0803",
          FILTER2: "Open",
          GRWLEN: real(0),
        },
      },
      {
        kind: "science",
        obstype: "OBJECT",
        obsclass: "science",
        pointing: "target",
        exptime: [150, 300],
        count: [2, 4],
        set: { READMODE: "Dark", NREADS: 8, LNRS: 8 },
      },
      {
        kind: "flat",
        obstype: "FLAT",
        obsclass: "partnerCal",
        pointing: "target",
        object: "GCALflat",
        exptime: [5, 8],
        count: [1, 1],
        gcal: IR_ON,
      },
      {
        kind: "arc",
        obstype: "ARC",
        obsclass: "partnerCal",
        pointing: "target",
        object: "Ar",
        exptime: [90, 120],
        count: [1, 1],
        gcal: AR,
      },
    ],
  },
  {
    family: "F2",
    name: "mos",
    daytime: false,
    weight: 1,
    variants: [
      {
        FILTER1: "K-long_G0812",
        FILTER2: "Open",
        GRISM: "R3K_G5803",
        GRWLEN: real(2.20000004768372),
        WAVELENG: real(22000),
        DECKER: "MOS",
        MOSPOS: "mos5",
        MASKTYPE: "2",
      },
    ],
    frames: [
      {
        kind: "science",
        obstype: "OBJECT",
        obsclass: "science",
        pointing: "target",
        exptime: [300],
        count: [2, 4],
        set: { READMODE: "Dark", NREADS: 8, LNRS: 8 },
      },
      {
        kind: "flat",
        obstype: "FLAT",
        obsclass: "partnerCal",
        pointing: "target",
        object: "GCALflat",
        exptime: [25],
        count: [1, 1],
        gcal: IR_ON,
      },
    ],
  },
  {
    family: "F2",
    name: "darks",
    daytime: true,
    weight: 1.5,
    variants: [
      { GRISM: "DK_G5804", FILTER1: "H_G0803", WAVELENG: real(16500) },
    ],
    frames: [
      {
        kind: "dark",
        obstype: "DARK",
        obsclass: "dayCal",
        pointing: "zenith",
        object: "Dark",
        exptime: [4, 6, 20, 60],
        count: [3, 5],
      },
    ],
  },
  {
    family: "F2",
    name: "lamp-flats",
    daytime: true,
    weight: 1,
    variants: [
      { FILTER1: "H_G0803", FILTER2: "Open", WAVELENG: real(-9999) },
      { FILTER1: "J_G0802", FILTER2: "Open", WAVELENG: real(-9999) },
    ],
    frames: [
      {
        kind: "flat",
        obstype: "FLAT",
        obsclass: "dayCal",
        pointing: "zenith",
        object: "GCALflat",
        exptime: [3, 20],
        count: [2, 3],
        gcal: IR_ON,
      },
      {
        kind: "flat",
        obstype: "FLAT",
        obsclass: "dayCal",
        pointing: "zenith",
        object: "GCALflat",
        exptime: [3, 20],
        count: [2, 3],
        gcal: IR_OFF,
      },
    ],
  },
  // GNIRS ----------------------------------------------------------------------------
  {
    family: "GNIRS",
    name: "imaging",
    daytime: false,
    weight: 1.5,
    variants: [
      {
        FILTER1: "YPHOT_G0544",
        FILTER2: "Open",
        ACQMIR: "In",
        WAVELENG: real(11000),
        GRATWAVE: real(1.0999),
        GRATORD: 6,
      },
      {
        FILTER1: "Open",
        FILTER2: "H2_G0522",
        ACQMIR: "In",
        WAVELENG: real(21200),
        GRATWAVE: real(2.1199),
        GRATORD: 3,
      },
    ],
    frames: [
      {
        kind: "science",
        obstype: "OBJECT",
        obsclass: "science",
        pointing: "target",
        exptime: [0.4, 10],
        count: [3, 6],
      },
    ],
  },
  {
    family: "GNIRS",
    name: "longslit",
    daytime: false,
    weight: 2,
    variants: [
      {
        FILTER2: "K_G0515",
        SLIT: "0.30arcsec_G5530",
        DECKER: "SCLong_G5531",
        GRATING: "111/mmSB_G5534",
        PRISM: "MIR_G5537",
        GRATWAVE: real(2.3),
        GRATORD: 3,
        WAVELENG: real(23000),
      },
      {
        FILTER2: "J_G0517",
        SLIT: "0.30arcsec_G5530",
        DECKER: "SCLong_G5531",
        GRATING: "32/mmSB_G5533",
        PRISM: "MIR_G5537",
        GRATWAVE: real(1.2499),
        GRATORD: 5,
        WAVELENG: real(12500),
      },
    ],
    frames: [
      {
        kind: "acquisition",
        obstype: "OBJECT",
        obsclass: "acq",
        pointing: "target",
        exptime: [3],
        count: [1, 2],
        set: { ACQMIR: "In", SLIT: "Acq_G5530", DECKER: "Acq_G5531" },
      },
      {
        kind: "science",
        obstype: "OBJECT",
        obsclass: "science",
        pointing: "target",
        exptime: [300, 600],
        count: [2, 4],
        set: { LNRS: 32 },
      },
      {
        kind: "flat",
        obstype: "FLAT",
        obsclass: "partnerCal",
        pointing: "target",
        object: "GCALflat",
        exptime: [1.5],
        count: [1, 1],
        gcal: IR_ON,
      },
      {
        kind: "arc",
        obstype: "ARC",
        obsclass: "partnerCal",
        pointing: "target",
        object: "Ar",
        exptime: [10],
        count: [1, 1],
        gcal: AR,
      },
    ],
  },
  {
    family: "GNIRS",
    name: "xd",
    daytime: false,
    weight: 2,
    variants: [
      {
        FILTER2: "XD_G0526",
        SLIT: "1.00arcsec_G5530",
        DECKER: "SCXD_G5531",
        GRATING: "32/mmSB_G5533",
        PRISM: "SB+SXD_G5536",
        GRATWAVE: real(1.6499),
        GRATORD: 4,
        WAVELENG: real(16500),
      },
      {
        FILTER2: "XD_G0526",
        SLIT: "0.10arcsec_G5530",
        DECKER: "LCXD_G5531",
        CAMERA: "LongBlue_G5542",
        GRATING: "111/mmLB_G5534",
        PRISM: "LB+LXD_G5535",
        GRATWAVE: real(2.302),
        GRATORD: 3,
        WAVELENG: real(23020),
      },
    ],
    frames: [
      {
        kind: "science",
        obstype: "OBJECT",
        obsclass: "science",
        pointing: "target",
        exptime: [120, 300],
        count: [2, 4],
        set: { LNRS: 32 },
      },
      {
        kind: "standard",
        obstype: "OBJECT",
        obsclass: "partnerCal",
        pointing: "target",
        exptime: [55],
        count: [1, 2],
      },
      {
        kind: "flat",
        obstype: "FLAT",
        obsclass: "partnerCal",
        pointing: "target",
        object: "GCALflat",
        exptime: [0.5],
        count: [1, 1],
        gcal: QH,
      },
      {
        kind: "arc",
        obstype: "ARC",
        obsclass: "partnerCal",
        pointing: "target",
        object: "Ar",
        exptime: [0.6],
        count: [1, 1],
        gcal: AR,
      },
    ],
  },
  {
    family: "GNIRS",
    name: "darks",
    daytime: true,
    weight: 1,
    variants: [
      {
        FILTER1: "Dark_G0511",
        FILTER2: "J_G0517",
        SLIT: "0.30arcsec_G5530",
        DECKER: "SCLong_G5531",
        GRATWAVE: real(1.2499),
        GRATORD: 5,
        WAVELENG: real(12500),
      },
    ],
    frames: [
      {
        kind: "dark",
        obstype: "DARK",
        obsclass: "dayCal",
        pointing: "zenith",
        object: "Dark",
        exptime: [0.5, 20],
        count: [3, 5],
      },
    ],
  },
];

/** GMOS spectroscopy sequences and the mask cards they need (archive.ts adds program-named MOS masks). */
export const GMOS_MASKS: Readonly<Record<string, Overrides>> = {
  longslit: SPECTRUM_MASK,
  mos: SPECTRUM_MASK,
  ifu: { MASKTYP: -1, MASKLOC: 0 },
  arcs: SPECTRUM_MASK,
};

// --- values that vary per file -------------------------------------------------------

/** Raw and requested site-quality percentiles, as the keywords write them. */
export const PERCENTILES = {
  iq: ["20-percentile", "70-percentile", "85-percentile", "Any"],
  cc: ["50-percentile", "70-percentile", "80-percentile", "Any"],
  wv: ["20-percentile", "50-percentile", "80-percentile", "Any"],
  bg: ["20-percentile", "50-percentile", "80-percentile", "Any"],
} as const;

/** Program types and their share of the programs (Q: queue, C: classical, LP: large, FT: fast turnaround, DD: director's time, SV: science verification). */
export const PROGRAM_TYPES: readonly (readonly [string, number])[] = [
  ["Q", 14],
  ["C", 2],
  ["LP", 1],
  ["FT", 1],
  ["DD", 1],
  ["SV", 1],
];

/** Fictitious observers and SSAs. */
export const STAFF: readonly string[] = [
  "K. Tanaka",
  "M. Rojas",
  "J. Silva",
  "L. Kahale",
  "P. Dumont",
  "R. Okafor",
  "S. Pereira",
  "T. Nakoa",
  "E. Vidal",
  "A. Moreau",
];

/** Geodetic latitude and longitude (degrees, east positive) and UT − local hours. */
export const SITES: Record<
  Site,
  {
    name: string;
    latitude: number;
    longitude: number;
    utOffset: number;
    pressureMmHg: number;
    tempRange: readonly [number, number];
  }
> = {
  N: {
    name: "Gemini-North",
    latitude: 19.8238,
    longitude: -155.469,
    utOffset: 10,
    pressureMmHg: 462.17,
    tempRange: [-2, 8],
  },
  S: {
    name: "Gemini-South",
    latitude: -30.2407,
    longitude: -70.7367,
    utOffset: 3,
    pressureMmHg: 555.5,
    tempRange: [4, 16],
  },
};
