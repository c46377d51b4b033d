/**
 * A GMOS-N configuration and its calibrations, as minimal rows. Scenarios
 * start from these and change only what their rule looks at.
 */
import { type FrameSpec, like } from "../helpers/cal.js";

export const T0 = "2019-06-15T06:00:00";

const AMPS_FULL =
  "'EEV 9273-16-03, right':[1:2048,1:4608]+'EEV 9273-20-04, right':[2049:4096,1:4608]+'EEV 9273-20-03, left':[4097:6144,1:4608]";

export const AMP_CENTRE = "'EEV 9273-20-04, right':[2049:4096,1:4608]";

export const ARRAYS = "EEV9273-16-03,EEV9273-20-04,EEV9273-20-03";

export const IMAGING_SCIENCE: FrameSpec = {
  header: {
    instrument: "GMOS-N",
    ut_datetime: T0,
    observation_type: "OBJECT",
    observation_class: "science",
    observation_id: "GN-2019A-Q-1-1",
    program_id: "GN-2019A-Q-1",
    spectroscopy: false,
    object: "NGC 1068",
    detector_roi_setting: "Full Frame",
    detector_binning: "2x2",
    exposure_time: 300,
    central_wavelength: 0.63,
    elevation: 60,
    cass_rotator_pa: 10,
  },
  inst: {
    disperser: "MIRROR",
    filter_name: "r_G0303",
    focal_plane_mask: "Imaging",
    detector_x_bin: 2,
    detector_y_bin: 2,
    array_name: ARRAYS,
    amp_read_area: AMPS_FULL,
    read_speed_setting: "slow",
    gain_setting: "low",
    nodandshuffle: false,
    prepared: false,
    overscan_trimmed: false,
    overscan_subtracted: false,
  },
  tags: ["GEMINI", "GMOS", "IMAGE", "NORTH", "RAW", "SIDEREAL", "UNPREPARED"],
};

/** A long-slit science frame with the R400 grating at 0.7 µm. */
export const LS_SCIENCE: FrameSpec = like(IMAGING_SCIENCE, {
  header: { spectroscopy: true, central_wavelength: 0.7 },
  inst: {
    disperser: "R400+_G5305",
    filter_name: "open1-6&open2-8",
    focal_plane_mask: "1.0arcsec",
  },
  tags: ["GEMINI", "GMOS", "LS", "NORTH", "RAW", "SIDEREAL", "SPECT"],
});

export const BIAS: FrameSpec = like(IMAGING_SCIENCE, {
  header: {
    observation_type: "BIAS",
    observation_class: "dayCal",
    object: "Bias",
    exposure_time: 0,
  },
  tags: ["BIAS", "CAL", "GEMINI", "GMOS", "NORTH", "RAW"],
});

export const PROCESSED_BIAS: FrameSpec = like(BIAS, {
  header: {
    reduction: "PROCESSED_BIAS",
    processing: "Science-Quality",
    processing_tag: "sq-2024",
  },
});

export const DARK: FrameSpec = like(IMAGING_SCIENCE, {
  header: {
    observation_type: "DARK",
    observation_class: "dayCal",
    object: "Dark",
  },
});

export const TWILIGHT: FrameSpec = like(IMAGING_SCIENCE, {
  header: {
    observation_type: "OBJECT",
    observation_class: "dayCal",
    object: "Twilight",
  },
});

export const ARC: FrameSpec = like(LS_SCIENCE, {
  header: {
    observation_type: "ARC",
    observation_class: "dayCal",
    object: "CuAr",
  },
});

export const SPECTRAL_FLAT: FrameSpec = like(LS_SCIENCE, {
  header: {
    observation_type: "FLAT",
    observation_class: "partnerCal",
    object: "GCALflat",
  },
});

export const SPECPHOT: FrameSpec = like(LS_SCIENCE, {
  header: {
    observation_class: "partnerCal",
    object: "Feige34",
    program_id: "GN-CAL20190615",
  },
  tags: ["GEMINI", "GMOS", "LS", "NORTH", "RAW", "SPECT", "STANDARD"],
});

export const PHOTSTD: FrameSpec = like(IMAGING_SCIENCE, {
  header: {
    observation_class: "partnerCal",
    object: "PG1323-086",
    program_id: "GN-CAL20190615",
  },
});

export const SLITILLUM: FrameSpec = like(LS_SCIENCE, {
  header: {
    observation_class: "dayCal",
    object: "Twilight",
  },
  tags: ["GEMINI", "GMOS", "LS", "NORTH", "RAW", "SLITILLUM", "SPECT"],
});

export const BPM: FrameSpec = like(IMAGING_SCIENCE, {
  header: {
    observation_type: "BPM",
    observation_class: "dayCal",
    reduction: "PROCESSED_BPM",
    processing: "Science-Quality",
    processing_tag: "sq-2024",
    ut_datetime: "2019-01-01T00:00:00",
  },
});

export const MASK: FrameSpec = like(IMAGING_SCIENCE, {
  header: {
    observation_type: "MASK",
    observation_class: "dayCal",
    data_label: "GN2019AQ001-01",
    ut_datetime: "2018-12-01T00:00:00",
  },
});
