CREATE SCHEMA fitsfleet;

CREATE TYPE public.caltype AS ENUM (
    'bias',
    'processed_bias',
    'dark',
    'processed_dark',
    'processed_bpm',
    'flat',
    'processed_flat',
    'arc',
    'processed_arc',
    'pinhole',
    'processed_pinhole',
    'processed_fringe',
    'ronchi_mask',
    'lampoff_flat',
    'qh_flat',
    'domeflat',
    'lampoff_domeflat',
    'mask',
    'slitillum',
    'processed_slitillum',
    'standard',
    'processed_standard',
    'telluric',
    'processed_telluric',
    'polarization_standard',
    'astrometric_standard',
    'polarization_flat',
    'specphot',
    'photometric_standard',
    'processed_slitflat',
    'processed_slit'
);

CREATE TYPE public.debundle_options AS ENUM (
    'INDIVIDUAL',
    'ALL',
    'GHOST',
    'GHOST-SLIT',
    'GHOST-REDBLUE',
    'IGRINS-2'
);

CREATE TYPE public.detector_gain_setting AS ENUM (
    'None',
    'high',
    'low',
    'standard'
);

CREATE TYPE public.detector_readspeed_setting AS ENUM (
    'None',
    'fast',
    'medium',
    'slow',
    'standard',
    'red:fast,blue:fast',
    'red:fast,blue:medium',
    'red:fast,blue:slow',
    'red:medium,blue:fast',
    'red:medium,blue:medium',
    'red:medium,blue:slow',
    'red:slow,blue:fast',
    'red:slow,blue:medium',
    'red:slow,blue:slow'
);

CREATE TYPE public.detector_welldepth_setting AS ENUM (
    'None',
    'Shallow',
    'Deep',
    'Invalid'
);

CREATE TYPE public.ghost_arm AS ENUM (
    'blue',
    'red',
    'slitv'
);

CREATE TYPE public.ghost_focal_plane_masks AS ENUM (
    'SR',
    'HR'
);

CREATE TYPE public.ghost_gain_setting AS ENUM (
    'low',
    'high',
    'standard'
);

CREATE TYPE public.ghost_read_speed_setting AS ENUM (
    'slow',
    'medium',
    'fast',
    'standard'
);

CREATE TYPE public.gmos_gain_setting AS ENUM (
    'low',
    'high'
);

CREATE TYPE public.gmos_read_speed_setting AS ENUM (
    'slow',
    'fast'
);

CREATE TYPE public.gnirs_read_mode AS ENUM (
    'Very Faint Objects',
    'Faint Objects',
    'Bright Objects',
    'Very Bright Objects',
    'Invalid'
);

CREATE TYPE public.gnirs_well_depth_setting AS ENUM (
    'Shallow',
    'Deep',
    'Invalid'
);

CREATE TYPE public.mdstatus AS ENUM (
    'CORRECT',
    'NOPASS',
    'NODATE',
    'BAD',
    'ENG',
    'EXCEPTION',
    'NOTGEMINI'
);

CREATE TYPE public.michelle_disperser AS ENUM (
    'Echelle',
    'LowN',
    'LowQ',
    'MedN1',
    'MedN2',
    'No Value',
    'unknown'
);

CREATE TYPE public.michelle_filter AS ENUM (
    'blank',
    'BothBlanks',
    'Clear',
    'Clear_A',
    'F112B21',
    'F116B9',
    'F125B9',
    'F209B42L',
    'F66LB',
    'F86B2',
    'I103B10',
    'I105B53',
    'I107B4',
    'I112B21',
    'I116B9',
    'I125B9',
    'I128B2',
    'I185B9',
    'I198B27',
    'I209B42',
    'I79B10',
    'I86B2',
    'I88B10',
    'I97B10',
    'IP103B10',
    'IP112B21',
    'IP116B9',
    'IP125B9',
    'IP185B9',
    'IP198B27',
    'IP79B10',
    'IP88B10',
    'IP97B10',
    'No Value',
    'NPBlock',
    'Poly',
    'QBlock'
);

CREATE TYPE public.michelle_focal_plane_mask AS ENUM (
    '4_pixels',
    'unknown',
    '8_pixels',
    'No Value',
    '1_pixel',
    '2_pixels',
    '3_pixels',
    '6_pixels',
    'pinholeMask',
    '16_pixels',
    'None'
);

CREATE TYPE public.michelle_read_mode AS ENUM (
    'CHOP',
    'NDCHOP',
    'STARE',
    'chop',
    'stare',
    'nod',
    'chop-nod'
);

CREATE TYPE public.mode AS ENUM (
    'imaging',
    'spectroscopy',
    'LS',
    'MOS',
    'IFS',
    'IFP'
);

CREATE TYPE public.nici_disperser AS ENUM (
    'Block',
    'H-50/50_G5701',
    'H-CH4-Dichroic_G5704',
    'H/K-Dichroic_G5705',
    'Mirror_G5702',
    'Open'
);

CREATE TYPE public.nici_focal_plane_mask AS ENUM (
    'Clear_G5710',
    'F0.22_G5715',
    'F0.32_G5714',
    'F0.46_G5713',
    'F0.65_G5712',
    'F0.90_G5711',
    'Grid_G5716'
);

CREATE TYPE public.nifs_read_mode AS ENUM (
    'Faint Object',
    'Medium Object',
    'Bright Object',
    'Invalid'
);

CREATE TYPE public.niri_camera AS ENUM (
    'datum',
    'f13.9',
    'f14',
    'f32',
    'f6',
    'INVALID',
    'No Value',
    'UNKNOWN'
);

CREATE TYPE public.niri_data_section AS ENUM (
    'Section(x1=0, x2=1024, y1=0, y2=1024)',
    'Section(x1=0, x2=256, y1=0, y2=256)',
    'Section(x1=0, x2=512, y1=0, y2=512)',
    'Section(x1=0, x2=768, y1=0, y2=768)',
    'Section(x1=256, x2=769, y1=0, y2=1024)',
    'Section(x1=256, x2=769, y1=256, y2=768)',
    'Section(x1=64, x2=192, y1=64, y2=192)',
    'None'
);

CREATE TYPE public.niri_disperser AS ENUM (
    'Hgrismf32_G5228',
    'Hgrism_G5203',
    'Jgrismf32_G5226',
    'Jgrism_G5202',
    'Kgrismf32_G5227',
    'Kgrism_G5204',
    'Lgrism_G5205',
    'Mgrism_G5206',
    'MIRROR'
);

CREATE TYPE public.niri_read_mode AS ENUM (
    'High Background',
    'Medium Background',
    'Low Background',
    'Invalid'
);

CREATE TYPE public.niri_well_depth_setting AS ENUM (
    'Shallow',
    'Deep',
    'Invalid'
);

CREATE TYPE public.obsclass AS ENUM (
    'dayCal',
    'partnerCal',
    'acqCal',
    'acq',
    'science',
    'progCal',
    'nightCal'
);

CREATE TYPE public.obstype AS ENUM (
    'DARK',
    'ARC',
    'FLAT',
    'BIAS',
    'OBJECT',
    'PINHOLE',
    'RONCHI',
    'CAL',
    'FRINGE',
    'MASK',
    'STANDARD',
    'SLITILLUM',
    'BPM'
);

CREATE TYPE public.procmode AS ENUM (
    'Failed',
    'Raw',
    'Quick-Look',
    'Science-Quality',
    'Quality-Assessment'
);

CREATE TYPE public.qa_state AS ENUM (
    'Fail',
    'CHECK',
    'Undefined',
    'Usable',
    'Pass'
);

CREATE TYPE public.reduction_state AS ENUM (
    'RAW',
    'PREPARED',
    'PROCESSED_FLAT',
    'PROCESSED_BIAS',
    'PROCESSED_FRINGE',
    'PROCESSED_ARC',
    'PROCESSED_DARK',
    'PROCESSED_TELLURIC',
    'PROCESSED_SCIENCE',
    'PROCESSED_BPM',
    'PROCESSED_STANDARD',
    'PROCESSED_SLITILLUM',
    'PROCESSED_PINHOLE',
    'PROCESSED_UNKNOWN'
);

CREATE TYPE public.telescope AS ENUM (
    'Gemini-North',
    'Gemini-South'
);

CREATE TABLE fitsfleet.fleet_instances (
    instance_id text NOT NULL,
    fleet text NOT NULL,
    instance_type text,
    zone text,
    lifecycle text,
    hourly_price numeric NOT NULL,
    launched_at timestamp with time zone NOT NULL,
    ended_at timestamp with time zone
);

CREATE TABLE fitsfleet.fleets (
    name text NOT NULL,
    run text NOT NULL,
    provider text NOT NULL,
    region text,
    state text DEFAULT 'launching'::text NOT NULL,
    spec jsonb NOT NULL,
    ec2_fleet_ids text[] DEFAULT '{}'::text[] NOT NULL,
    launch_template_id text,
    max_hourly_cost numeric,
    budget numeric,
    deadline timestamp with time zone NOT NULL,
    launched_at timestamp with time zone DEFAULT now() NOT NULL,
    ended_at timestamp with time zone,
    end_reason text,
    spend numeric DEFAULT 0 NOT NULL,
    spend_at timestamp with time zone,
    CONSTRAINT fleets_provider_check CHECK ((provider = ANY (ARRAY['local'::text, 'ec2'::text]))),
    CONSTRAINT fleets_state_check CHECK ((state = ANY (ARRAY['launching'::text, 'running'::text, 'ending'::text, 'ended'::text, 'failed'::text])))
);

CREATE TABLE fitsfleet.ingest_ledger (
    id bigint NOT NULL,
    storage text NOT NULL,
    path text NOT NULL,
    filename text NOT NULL,
    sortkey text NOT NULL,
    size bigint,
    lastmod timestamp with time zone,
    state text DEFAULT 'queued'::text NOT NULL,
    force boolean DEFAULT false NOT NULL,
    force_md5 boolean DEFAULT false NOT NULL,
    not_before timestamp with time zone,
    attempts integer DEFAULT 0 NOT NULL,
    outcome text,
    error text,
    worker text,
    diskfile_id integer,
    queued_at timestamp with time zone DEFAULT now() NOT NULL,
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    claim uuid,
    lease_until timestamp with time zone,
    interruptions integer DEFAULT 0 NOT NULL,
    CONSTRAINT ingest_ledger_state_check CHECK ((state = ANY (ARRAY['queued'::text, 'active'::text, 'done'::text, 'failed'::text, 'skipped'::text])))
);

CREATE SEQUENCE fitsfleet.ingest_ledger_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE fitsfleet.ingest_ledger_id_seq OWNED BY fitsfleet.ingest_ledger.id;

CREATE TABLE fitsfleet.preview_claims (
    queue_id integer NOT NULL,
    claim uuid NOT NULL,
    lease_until timestamp with time zone NOT NULL
);

CREATE TABLE fitsfleet.rollcall_findings (
    scope text NOT NULL,
    diskfile_id integer NOT NULL,
    kind text NOT NULL,
    path text,
    filename text,
    expected_md5 text,
    found_md5 text,
    md5_from text,
    error text,
    CONSTRAINT rollcall_findings_kind_check CHECK ((kind = ANY (ARRAY['mismatch'::text, 'error'::text])))
);

CREATE TABLE fitsfleet.rollcall_runs (
    scope text NOT NULL,
    storage text NOT NULL,
    file_pre text,
    row_limit bigint,
    checkmd5 boolean NOT NULL,
    max_id integer NOT NULL,
    last_id integer DEFAULT 0 NOT NULL,
    checked bigint DEFAULT 0 NOT NULL,
    missing bigint DEFAULT 0 NOT NULL,
    mismatched bigint DEFAULT 0 NOT NULL,
    errors bigint DEFAULT 0 NOT NULL,
    seconds double precision DEFAULT 0 NOT NULL,
    invocations integer DEFAULT 1 NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    finished_at timestamp with time zone
);

CREATE SEQUENCE fitsfleet.run_event_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

CREATE TABLE fitsfleet.run_events (
    run_id text NOT NULL,
    seq bigint NOT NULL,
    epoch bigint DEFAULT 0 NOT NULL,
    type text NOT NULL,
    event jsonb NOT NULL,
    writer xid8 DEFAULT pg_current_xact_id() NOT NULL,
    in_flight xid8[] DEFAULT '{}'::xid8[] NOT NULL,
    written_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE fitsfleet.run_journals (
    run_id text NOT NULL,
    highest_deleted bigint DEFAULT 0 NOT NULL
);

CREATE TABLE fitsfleet.run_leases (
    run_id text NOT NULL,
    holder text NOT NULL,
    epoch bigint NOT NULL,
    holder_pid integer NOT NULL,
    holder_started timestamp with time zone NOT NULL,
    acquired_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL
);

CREATE TABLE fitsfleet.run_snapshots (
    run_id text NOT NULL,
    seq bigint NOT NULL,
    taken_at timestamp with time zone DEFAULT now() NOT NULL,
    state bytea NOT NULL,
    sha256 bytea NOT NULL
);

CREATE TABLE fitsfleet.run_steps (
    run_id text NOT NULL,
    step text NOT NULL,
    "position" smallint NOT NULL,
    status text DEFAULT 'pending'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    started_at timestamp with time zone,
    ended_at timestamp with time zone,
    figures jsonb DEFAULT '{}'::jsonb NOT NULL,
    checkpoint jsonb DEFAULT '{}'::jsonb NOT NULL,
    reason text,
    CONSTRAINT run_steps_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'running'::text, 'done'::text, 'skipped'::text, 'failed'::text]))),
    CONSTRAINT run_steps_step_check CHECK ((step = ANY (ARRAY['init'::text, 'migrate'::text, 'enqueue'::text, 'launch'::text, 'drain'::text, 'calcache'::text, 'terminate'::text, 'verify'::text])))
);

CREATE TABLE fitsfleet.runs (
    id text NOT NULL,
    state text DEFAULT 'running'::text NOT NULL,
    provider text NOT NULL,
    storage text NOT NULL,
    queue text NOT NULL,
    options jsonb NOT NULL,
    fleet text,
    coordinator text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    ended_at timestamp with time zone,
    reason text,
    CONSTRAINT runs_provider_check CHECK ((provider = ANY (ARRAY['local'::text, 'ec2'::text]))),
    CONSTRAINT runs_state_check CHECK ((state = ANY (ARRAY['running'::text, 'succeeded'::text, 'failed'::text, 'aborted'::text])))
);

CREATE TABLE fitsfleet.schema_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    sha256 text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.calcache (
    id bigint NOT NULL,
    obs_hid integer NOT NULL,
    cal_hid integer NOT NULL,
    rank smallint NOT NULL,
    caltype public.caltype
);

CREATE SEQUENCE public.calcache_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.calcache_id_seq OWNED BY public.calcache.id;

CREATE TABLE public.calcachequeue (
    id integer NOT NULL,
    obs_hid integer NOT NULL,
    inprogress boolean,
    fail_dt timestamp without time zone,
    added timestamp without time zone,
    sortkey text,
    filename text,
    error text
);

CREATE SEQUENCE public.calcachequeue_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.calcachequeue_id_seq OWNED BY public.calcachequeue.id;

CREATE TABLE public.diskfile (
    id integer NOT NULL,
    file_id integer NOT NULL,
    filename text,
    path text,
    present boolean,
    canonical boolean,
    file_md5 text,
    file_size bigint,
    lastmod timestamp with time zone,
    entrytime timestamp with time zone,
    compressed boolean,
    data_md5 text,
    data_size bigint,
    isfits boolean,
    fvwarnings integer,
    fverrors integer,
    mdready boolean
);

CREATE SEQUENCE public.diskfile_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.diskfile_id_seq OWNED BY public.diskfile.id;

CREATE TABLE public.diskfilereport (
    id integer NOT NULL,
    diskfile_id integer NOT NULL,
    fvreport text,
    mdreport text,
    mdstatus public.mdstatus
);

CREATE SEQUENCE public.diskfilereport_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.diskfilereport_id_seq OWNED BY public.diskfilereport.id;

CREATE TABLE public.downloadlog (
    id integer NOT NULL,
    usagelog_id bigint NOT NULL,
    selection text,
    numresults integer,
    sending_files boolean,
    numdenied integer,
    query_started timestamp without time zone,
    query_completed timestamp without time zone,
    download_completed timestamp without time zone,
    notes text
);

CREATE SEQUENCE public.downloadlog_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.downloadlog_id_seq OWNED BY public.downloadlog.id;

CREATE TABLE public.exportqueue (
    id integer NOT NULL,
    filename text NOT NULL,
    path text,
    destination text NOT NULL,
    inprogress boolean,
    fail_dt timestamp without time zone,
    sortkey text,
    added timestamp without time zone,
    after timestamp without time zone,
    error text,
    md5_before_header_update text,
    md5_after_header_update text,
    header_update text
);

CREATE SEQUENCE public.exportqueue_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.exportqueue_id_seq OWNED BY public.exportqueue.id;

CREATE TABLE public.f2 (
    id integer NOT NULL,
    header_id integer NOT NULL,
    disperser text,
    filter_name text,
    lyot_stop text,
    read_mode text,
    focal_plane_mask text
);

CREATE SEQUENCE public.f2_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.f2_id_seq OWNED BY public.f2.id;

CREATE TABLE public.file (
    id integer NOT NULL,
    name text NOT NULL
);

CREATE SEQUENCE public.file_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.file_id_seq OWNED BY public.file.id;

CREATE TABLE public.filedownloadlog (
    id integer NOT NULL,
    usagelog_id bigint NOT NULL,
    diskfile_filename text,
    diskfile_file_md5 text,
    diskfile_file_size bigint,
    ut_datetime timestamp without time zone,
    released boolean,
    pi_access boolean,
    staff_access boolean,
    magic_access boolean,
    eng_access boolean,
    inst_team_access boolean,
    canhaveit boolean,
    notes text
);

CREATE SEQUENCE public.filedownloadlog_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.filedownloadlog_id_seq OWNED BY public.filedownloadlog.id;

CREATE TABLE public.fileopsqueue (
    id integer NOT NULL,
    filename text,
    inprogress boolean,
    response_required boolean,
    fail_dt timestamp without time zone,
    added timestamp without time zone,
    after timestamp without time zone,
    sortkey timestamp without time zone,
    error text,
    request text NOT NULL,
    response text,
    batch text
);

CREATE SEQUENCE public.fileopsqueue_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.fileopsqueue_id_seq OWNED BY public.fileopsqueue.id;

CREATE TABLE public.fileuploadlog (
    id integer NOT NULL,
    usagelog_id bigint NOT NULL,
    ut_transfer_start timestamp without time zone,
    ut_transfer_complete timestamp without time zone,
    filename text,
    path text,
    size bigint,
    md5 text,
    processed_cal boolean,
    destination text,
    s3_ut_start timestamp without time zone,
    s3_ut_end timestamp without time zone,
    s3_ok boolean,
    file_ok boolean,
    notes text
);

CREATE SEQUENCE public.fileuploadlog_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.fileuploadlog_id_seq OWNED BY public.fileuploadlog.id;

CREATE TABLE public.footprint (
    id integer NOT NULL,
    header_id integer NOT NULL,
    extension text,
    area polygon
);

CREATE SEQUENCE public.footprint_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.footprint_id_seq OWNED BY public.footprint.id;

CREATE TABLE public.fulltextheader (
    id integer NOT NULL,
    diskfile_id integer NOT NULL,
    fulltext text
);

CREATE SEQUENCE public.fulltextheader_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.fulltextheader_id_seq OWNED BY public.fulltextheader.id;

CREATE TABLE public.ghost (
    id integer NOT NULL,
    header_id integer NOT NULL,
    arm public.ghost_arm NOT NULL,
    want_before_arc boolean,
    detector_name text,
    detector_x_bin integer,
    detector_y_bin integer,
    exposure_time numeric(8,4),
    gain_setting public.ghost_gain_setting,
    read_speed_setting public.ghost_read_speed_setting,
    focal_plane_mask public.ghost_focal_plane_masks,
    prepared boolean,
    overscan_subtracted boolean,
    overscan_trimmed boolean
);

CREATE SEQUENCE public.ghost_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.ghost_id_seq OWNED BY public.ghost.id;

CREATE TABLE public.glacier (
    id integer NOT NULL,
    filename text NOT NULL,
    path text,
    md5 text NOT NULL,
    when_uploaded timestamp without time zone,
    last_inventory timestamp without time zone
);

CREATE SEQUENCE public.glacier_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.glacier_id_seq OWNED BY public.glacier.id;

CREATE TABLE public.gmos (
    id integer NOT NULL,
    header_id integer NOT NULL,
    disperser text,
    filter_name text,
    detector_x_bin integer,
    detector_y_bin integer,
    array_name text,
    amp_read_area text,
    read_speed_setting public.gmos_read_speed_setting,
    gain_setting public.gmos_gain_setting,
    focal_plane_mask text,
    nodandshuffle boolean,
    nod_count integer,
    nod_pixels integer,
    prepared boolean,
    overscan_subtracted boolean,
    overscan_trimmed boolean,
    grating_order integer
);

CREATE SEQUENCE public.gmos_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.gmos_id_seq OWNED BY public.gmos.id;

CREATE TABLE public.gnirs (
    id integer NOT NULL,
    header_id integer NOT NULL,
    disperser text,
    filter_name text,
    read_mode public.gnirs_read_mode,
    well_depth_setting public.gnirs_well_depth_setting,
    camera text,
    focal_plane_mask text,
    array_name text,
    prism_motor_steps integer
);

CREATE SEQUENCE public.gnirs_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.gnirs_id_seq OWNED BY public.gnirs.id;

CREATE TABLE public.gpi (
    id integer NOT NULL,
    header_id integer NOT NULL,
    filter_name text,
    disperser text,
    focal_plane_mask text,
    pupil_mask text,
    astrometric_standard boolean,
    wollaston boolean,
    prism boolean
);

CREATE SEQUENCE public.gpi_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.gpi_id_seq OWNED BY public.gpi.id;

CREATE TABLE public.gsaoi (
    id integer NOT NULL,
    header_id integer NOT NULL,
    filter_name text,
    read_mode text
);

CREATE SEQUENCE public.gsaoi_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.gsaoi_id_seq OWNED BY public.gsaoi.id;

CREATE TABLE public.header (
    id integer NOT NULL,
    diskfile_id integer NOT NULL,
    program_id text,
    engineering boolean,
    science_verification boolean,
    calibration_program boolean,
    processing public.procmode,
    processing_tag text,
    observation_id text,
    data_label text,
    telescope public.telescope,
    instrument text,
    ut_datetime timestamp without time zone,
    ut_datetime_secs bigint,
    local_time time without time zone,
    observation_type public.obstype,
    observation_class public.obsclass,
    object text,
    ra numeric(16,12),
    "dec" numeric(16,12),
    azimuth numeric(16,12),
    elevation numeric(16,12),
    cass_rotator_pa numeric(16,12),
    airmass numeric(8,6),
    filter_name text,
    exposure_time numeric(12,6),
    disperser text,
    camera text,
    central_wavelength numeric(8,6),
    wavelength_band text,
    focal_plane_mask text,
    pupil_mask text,
    detector_binning text,
    detector_roi_setting text,
    detector_gain_setting public.detector_gain_setting,
    detector_readspeed_setting public.detector_readspeed_setting,
    detector_welldepth_setting public.detector_welldepth_setting,
    detector_readmode_setting text,
    coadds integer,
    spectroscopy boolean,
    mode public.mode,
    adaptive_optics boolean,
    laser_guide_star boolean,
    wavefront_sensor text,
    gcal_lamp text,
    raw_iq integer,
    raw_cc integer,
    raw_wv integer,
    raw_bg integer,
    requested_iq integer,
    requested_cc integer,
    requested_wv integer,
    requested_bg integer,
    qa_state public.qa_state,
    release date,
    reduction public.reduction_state,
    site_monitoring boolean,
    types text,
    phot_standard boolean,
    proprietary_coordinates boolean,
    pre_image boolean,
    numpix integer
);

CREATE SEQUENCE public.header_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.header_id_seq OWNED BY public.header.id;

CREATE TABLE public.history (
    id integer NOT NULL,
    diskfile_id integer,
    timestamp_start timestamp without time zone,
    timestamp_end timestamp without time zone,
    primitive text,
    args text
);

CREATE SEQUENCE public.history_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.history_id_seq OWNED BY public.history.id;

CREATE TABLE public.ingestqueue (
    id integer NOT NULL,
    filename text NOT NULL,
    path text NOT NULL,
    inprogress boolean,
    fail_dt timestamp without time zone,
    added timestamp without time zone,
    force_md5 boolean,
    force boolean,
    after timestamp without time zone,
    no_defer boolean,
    batch text,
    sortkey text,
    error text,
    md5_before_header_update text,
    md5_after_header_update text,
    header_update text
);

CREATE SEQUENCE public.ingestqueue_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.ingestqueue_id_seq OWNED BY public.ingestqueue.id;

CREATE TABLE public.ipprefix (
    id integer NOT NULL,
    prefix cidr NOT NULL,
    api_used text,
    api_query_utc timestamp without time zone,
    asn integer,
    name text,
    description text,
    parent cidr,
    badness integer,
    allow boolean,
    deny boolean
);

CREATE SEQUENCE public.ipprefix_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.ipprefix_id_seq OWNED BY public.ipprefix.id;

CREATE TABLE public.michelle (
    id integer NOT NULL,
    header_id integer NOT NULL,
    disperser public.michelle_disperser,
    filter_name public.michelle_filter,
    read_mode public.michelle_read_mode,
    focal_plane_mask public.michelle_focal_plane_mask
);

CREATE SEQUENCE public.michelle_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.michelle_id_seq OWNED BY public.michelle.id;

CREATE TABLE public.miscfile (
    id integer NOT NULL,
    diskfile_id integer NOT NULL,
    release timestamp without time zone NOT NULL,
    description text,
    program_id text
);

CREATE SEQUENCE public.miscfile_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.miscfile_id_seq OWNED BY public.miscfile.id;

CREATE TABLE public.monitoring (
    id integer NOT NULL,
    filename text,
    data_label text,
    ut_datetime timestamp without time zone,
    header_id integer,
    software_used text,
    software_version text,
    processing_tag text,
    recipe text,
    keyword text,
    label text,
    adid integer,
    value_int integer,
    value_float double precision,
    value_text text,
    notes text
);

CREATE SEQUENCE public.monitoring_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.monitoring_id_seq OWNED BY public.monitoring.id;

CREATE TABLE public.nici (
    id integer NOT NULL,
    header_id integer NOT NULL,
    filter_name text,
    focal_plane_mask public.nici_focal_plane_mask,
    disperser public.nici_disperser
);

CREATE SEQUENCE public.nici_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.nici_id_seq OWNED BY public.nici.id;

CREATE TABLE public.nifs (
    id integer NOT NULL,
    header_id integer NOT NULL,
    disperser text,
    filter_name text,
    read_mode public.nifs_read_mode,
    focal_plane_mask text
);

CREATE SEQUENCE public.nifs_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.nifs_id_seq OWNED BY public.nifs.id;

CREATE TABLE public.niri (
    id integer NOT NULL,
    header_id integer NOT NULL,
    disperser public.niri_disperser,
    filter_name text,
    read_mode public.niri_read_mode,
    well_depth_setting public.niri_well_depth_setting,
    data_section public.niri_data_section,
    camera public.niri_camera,
    focal_plane_mask text
);

CREATE SEQUENCE public.niri_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.niri_id_seq OWNED BY public.niri.id;

CREATE TABLE public.notification (
    id integer NOT NULL,
    label text,
    selection text,
    piemail text,
    ngoemail text,
    csemail text,
    internal boolean
);

CREATE SEQUENCE public.notification_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.notification_id_seq OWNED BY public.notification.id;

CREATE TABLE public.objcat (
    id integer NOT NULL,
    header_id integer NOT NULL,
    extnum integer NOT NULL,
    "NUMBER" integer,
    "X_IMAGE" double precision,
    "Y_IMAGE" double precision,
    "ERRX2_IMAGE" double precision,
    "ERRY2_IMAGE" double precision,
    "ERRXY_IMAGE" double precision,
    "X_WORLD" double precision,
    "Y_WORLD" double precision,
    "ERRX2_WORLD" double precision,
    "ERRY2_WORLD" double precision,
    "ERRXY_WORLD" double precision,
    "A_IMAGE" double precision,
    "B_IMAGE" double precision,
    "THETA_IMAGE" double precision,
    "ERRA_IMAGE" double precision,
    "ERRB_IMAGE" double precision,
    "ERRTHETA_IMAGE" double precision,
    "A_WORLD" double precision,
    "B_WORLD" double precision,
    "THETA_WORLD" double precision,
    "ERRA_WORLD" double precision,
    "ERRB_WORLD" double precision,
    "ERRTHETA_WORLD" double precision,
    "FWHM_IMAGE" double precision,
    "FWHM_WORLD" double precision,
    "FLUX_RADIUS" double precision,
    "ELLIPTICITY" double precision,
    "FLUX_AUTO" double precision,
    "FLUXERR_AUTO" double precision,
    "MAG_AUTO" double precision,
    "MAGERR_AUTO" double precision,
    "FLUX_MAX" double precision,
    "CLASS_STAR" double precision,
    "ISOAREA_IMAGE" integer,
    "FLAGS" integer,
    "IMAFLAGS_ISO" integer,
    "NIMAFLAGS_ISO" integer,
    "BACKGROUND" double precision,
    "REF_NUMBER" integer,
    "REF_MAG" double precision,
    "REF_MAG_ERR" double precision,
    "PROFILE_FWHM" double precision,
    "PROFILE_EE50" double precision
);

CREATE SEQUENCE public.objcat_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.objcat_id_seq OWNED BY public.objcat.id;

CREATE TABLE public.obslog (
    id integer NOT NULL,
    diskfile_id integer NOT NULL,
    program_id text,
    date date
);

CREATE TABLE public.obslog_comment (
    id integer NOT NULL,
    data_label text,
    comment text
);

CREATE SEQUENCE public.obslog_comment_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.obslog_comment_id_seq OWNED BY public.obslog_comment.id;

CREATE SEQUENCE public.obslog_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.obslog_id_seq OWNED BY public.obslog.id;

CREATE TABLE public.photstandard (
    id integer NOT NULL,
    name text,
    field text,
    ra numeric(16,12),
    "dec" numeric(16,12),
    u_mag numeric(6,4),
    v_mag numeric(6,4),
    g_mag numeric(6,4),
    r_mag numeric(6,4),
    i_mag numeric(6,4),
    z_mag numeric(6,4),
    y_mag numeric(6,4),
    j_mag numeric(6,4),
    h_mag numeric(6,4),
    k_mag numeric(6,4),
    lprime_mag numeric(6,4),
    m_mag numeric(6,4),
    coords point
);

CREATE SEQUENCE public.photstandard_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.photstandard_id_seq OWNED BY public.photstandard.id;

CREATE TABLE public.photstandardobs (
    id integer NOT NULL,
    photstandard_id integer NOT NULL,
    footprint_id integer NOT NULL
);

CREATE SEQUENCE public.photstandardobs_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.photstandardobs_id_seq OWNED BY public.photstandardobs.id;

CREATE TABLE public.preview (
    id integer NOT NULL,
    diskfile_id integer NOT NULL,
    filename text
);

CREATE SEQUENCE public.preview_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.preview_id_seq OWNED BY public.preview.id;

CREATE TABLE public.previewqueue (
    id integer NOT NULL,
    diskfile_id integer NOT NULL,
    filename text,
    inprogress boolean,
    fail_dt timestamp without time zone,
    force boolean,
    scavengeonly boolean,
    sortkey text,
    error text
);

CREATE SEQUENCE public.previewqueue_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.previewqueue_id_seq OWNED BY public.previewqueue.id;

CREATE TABLE public.processinglog (
    id integer NOT NULL,
    input_files text,
    output_files text,
    num_input_files integer,
    num_output_files integer,
    capture_files boolean,
    capture_monitoring boolean,
    debundle text,
    recipe text,
    actual_recipe text,
    processing_tag text,
    processing_started timestamp without time zone,
    processing_completed timestamp without time zone,
    cpu_secs double precision,
    failed boolean,
    log text
);

CREATE TABLE public.processinglog_files (
    id integer NOT NULL,
    processinglog_id integer NOT NULL,
    filename text,
    md5sum text,
    output boolean
);

CREATE SEQUENCE public.processinglog_files_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.processinglog_files_id_seq OWNED BY public.processinglog_files.id;

CREATE SEQUENCE public.processinglog_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.processinglog_id_seq OWNED BY public.processinglog.id;

CREATE TABLE public.processingtag (
    id integer NOT NULL,
    tag text NOT NULL,
    domain text NOT NULL,
    priority integer NOT NULL,
    published boolean,
    description text
);

CREATE SEQUENCE public.processingtag_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.processingtag_id_seq OWNED BY public.processingtag.id;

CREATE TABLE public.program (
    id integer NOT NULL,
    program_id text,
    pi_coi_names text,
    title text,
    abstract text
);

CREATE SEQUENCE public.program_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.program_id_seq OWNED BY public.program.id;

CREATE TABLE public.programpublication (
    id integer NOT NULL,
    program_id integer NOT NULL,
    publication_id integer NOT NULL
);

CREATE SEQUENCE public.programpublication_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.programpublication_id_seq OWNED BY public.programpublication.id;

CREATE TABLE public.provenance (
    id integer NOT NULL,
    diskfile_id integer,
    "timestamp" timestamp without time zone,
    filename text,
    md5 text,
    added_by text
);

CREATE SEQUENCE public.provenance_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.provenance_id_seq OWNED BY public.provenance.id;

CREATE TABLE public.publication (
    id integer NOT NULL,
    bibcode text,
    author text,
    title text,
    year integer,
    journal text,
    telescope text,
    instrument text,
    country text,
    wavelength text,
    mode text,
    gstaff boolean,
    gsa boolean,
    golden boolean,
    too boolean,
    partner text
);

CREATE SEQUENCE public.publication_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.publication_id_seq OWNED BY public.publication.id;

CREATE TABLE public.qametriciq (
    id integer NOT NULL,
    qareport_id integer,
    datalabel text,
    filename text,
    detector text,
    fwhm numeric(6,3),
    fwhm_std numeric(6,3),
    isofwhm numeric(6,3),
    isofwhm_std numeric(6,3),
    ee50d numeric(6,3),
    ee50d_std numeric(6,3),
    elip numeric(5,3),
    elip_std numeric(5,3),
    pa numeric(6,3),
    pa_std numeric(6,3),
    adaptive_optics boolean,
    ao_seeing numeric(6,3),
    strehl numeric(6,3),
    strehl_std numeric(6,3),
    nsamples integer,
    percentile_band text,
    comment text
);

CREATE SEQUENCE public.qametriciq_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.qametriciq_id_seq OWNED BY public.qametriciq.id;

CREATE TABLE public.qametricpe (
    id integer NOT NULL,
    qareport_id integer,
    datalabel text,
    filename text,
    detector text,
    dra numeric(9,3),
    dra_std numeric(9,3),
    ddec numeric(9,3),
    ddec_std numeric(9,3),
    astref text,
    nsamples integer,
    comment text
);

CREATE SEQUENCE public.qametricpe_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.qametricpe_id_seq OWNED BY public.qametricpe.id;

CREATE TABLE public.qametricsb (
    id integer NOT NULL,
    qareport_id integer,
    datalabel text,
    filename text,
    detector text,
    mag numeric(5,3),
    mag_std numeric(5,3),
    electrons numeric(9,2),
    electrons_std numeric(7,2),
    nsamples integer,
    percentile_band text,
    comment text
);

CREATE SEQUENCE public.qametricsb_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.qametricsb_id_seq OWNED BY public.qametricsb.id;

CREATE TABLE public.qametriczp (
    id integer NOT NULL,
    qareport_id integer,
    datalabel text,
    filename text,
    detector text,
    mag numeric(5,3),
    mag_std numeric(5,3),
    cloud numeric(5,3),
    cloud_std numeric(5,3),
    photref text,
    nsamples integer,
    percentile_band text,
    comment text
);

CREATE SEQUENCE public.qametriczp_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.qametriczp_id_seq OWNED BY public.qametriczp.id;

CREATE TABLE public.qareport (
    id integer NOT NULL,
    hostname text,
    userid text,
    processid integer,
    executable text,
    software text,
    software_version text,
    context text,
    submit_time timestamp without time zone,
    submit_host text
);

CREATE SEQUENCE public.qareport_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.qareport_id_seq OWNED BY public.qareport.id;

CREATE TABLE public.querylog (
    id integer NOT NULL,
    usagelog_id bigint NOT NULL,
    summarytype text,
    selection text,
    numresults integer,
    numcalresults integer,
    query_started timestamp without time zone,
    query_completed timestamp without time zone,
    cals_completed timestamp without time zone,
    summary_completed timestamp without time zone,
    notes text
);

CREATE SEQUENCE public.querylog_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.querylog_id_seq OWNED BY public.querylog.id;

CREATE TABLE public.reducequeue (
    id integer NOT NULL,
    filenames text[],
    inprogress boolean,
    fail_dt timestamp without time zone,
    added timestamp without time zone,
    sortkey text,
    filename text,
    debundle public.debundle_options,
    recipe text,
    uparms text,
    capture_files boolean,
    capture_monitoring boolean,
    batch text,
    after_batch text,
    error text,
    mem_gb double precision,
    host text,
    designated_host text,
    intent text,
    initiatedby text,
    tag text
);

CREATE SEQUENCE public.reducequeue_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.reducequeue_id_seq OWNED BY public.reducequeue.id;

CREATE TABLE public.reduction (
    id integer NOT NULL,
    header_id integer NOT NULL,
    processing_intent public.procmode,
    software_mode public.procmode,
    software_used text,
    software_version text,
    processing_initiated_by text,
    processing_reviewed_by text,
    processing_review_outcome public.procmode,
    processing_level integer,
    processing_tag text
);

CREATE SEQUENCE public.reduction_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.reduction_id_seq OWNED BY public.reduction.id;

CREATE TABLE public.semester (
    id integer NOT NULL,
    name text NOT NULL,
    start date,
    "end" date
);

CREATE SEQUENCE public.semester_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.semester_id_seq OWNED BY public.semester.id;

CREATE TABLE public.tape (
    id integer NOT NULL,
    label text NOT NULL,
    firstwrite timestamp without time zone,
    lastwrite timestamp without time zone,
    lastverified timestamp without time zone,
    location text,
    lastmoved timestamp without time zone,
    active boolean,
    "full" boolean,
    set integer,
    fate text
);

CREATE SEQUENCE public.tape_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.tape_id_seq OWNED BY public.tape.id;

CREATE TABLE public.tapefile (
    id integer NOT NULL,
    tapewrite_id integer NOT NULL,
    filename text,
    size bigint,
    md5 text,
    compressed boolean,
    data_size bigint,
    data_md5 text,
    lastmod timestamp with time zone
);

CREATE SEQUENCE public.tapefile_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.tapefile_id_seq OWNED BY public.tapefile.id;

CREATE TABLE public.taperead (
    id integer NOT NULL,
    filename text,
    md5 text,
    requester text
);

CREATE SEQUENCE public.taperead_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.taperead_id_seq OWNED BY public.taperead.id;

CREATE TABLE public.tapewrite (
    id integer NOT NULL,
    tape_id integer NOT NULL,
    filenum integer,
    startdate timestamp without time zone,
    enddate timestamp without time zone,
    succeeded boolean,
    size bigint,
    beforestatus text,
    afterstatus text,
    hostname text,
    tapedrive text,
    notes text
);

CREATE SEQUENCE public.tapewrite_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.tapewrite_id_seq OWNED BY public.tapewrite.id;

CREATE TABLE public.usagelog (
    id bigint NOT NULL,
    utdatetime timestamp without time zone,
    user_id integer,
    ip_address text,
    user_agent text,
    referer text,
    method text,
    uri text,
    this text,
    bytes bigint,
    status integer,
    notes text
);

CREATE TABLE public.usagelog_analysis (
    id bigint NOT NULL,
    usagelog_id bigint NOT NULL,
    utc_analysed timestamp without time zone,
    prefix_id integer,
    asn integer,
    uri_score integer,
    agent_score integer,
    referer_score integer,
    total_score integer
);

CREATE SEQUENCE public.usagelog_analysis_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.usagelog_analysis_id_seq OWNED BY public.usagelog_analysis.id;

CREATE SEQUENCE public.usagelog_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.usagelog_id_seq OWNED BY public.usagelog.id;

CREATE TABLE public.userprogram (
    id integer NOT NULL,
    user_id integer NOT NULL,
    program_id text,
    observation_id text,
    filename text,
    path text
);

CREATE SEQUENCE public.userprogram_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.userprogram_id_seq OWNED BY public.userprogram.id;

CREATE TABLE public.users (
    id integer NOT NULL,
    orcid_id character varying(20),
    noirlab_id text,
    username text NOT NULL,
    fullname text,
    password text,
    salt text,
    email text,
    gemini_staff boolean,
    misc_upload boolean,
    user_admin boolean,
    file_permission_admin boolean,
    instrument_team text,
    superuser boolean,
    reset_token text,
    reset_token_expires timestamp without time zone,
    cookie text,
    account_created timestamp without time zone,
    password_changed timestamp without time zone,
    last_login timestamp without time zone,
    last_login_by text
);

CREATE SEQUENCE public.users_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.users_id_seq OWNED BY public.users.id;

ALTER TABLE ONLY fitsfleet.ingest_ledger ALTER COLUMN id SET DEFAULT nextval('fitsfleet.ingest_ledger_id_seq'::regclass);

ALTER TABLE ONLY public.calcache ALTER COLUMN id SET DEFAULT nextval('public.calcache_id_seq'::regclass);

ALTER TABLE ONLY public.calcachequeue ALTER COLUMN id SET DEFAULT nextval('public.calcachequeue_id_seq'::regclass);

ALTER TABLE ONLY public.diskfile ALTER COLUMN id SET DEFAULT nextval('public.diskfile_id_seq'::regclass);

ALTER TABLE ONLY public.diskfilereport ALTER COLUMN id SET DEFAULT nextval('public.diskfilereport_id_seq'::regclass);

ALTER TABLE ONLY public.downloadlog ALTER COLUMN id SET DEFAULT nextval('public.downloadlog_id_seq'::regclass);

ALTER TABLE ONLY public.exportqueue ALTER COLUMN id SET DEFAULT nextval('public.exportqueue_id_seq'::regclass);

ALTER TABLE ONLY public.f2 ALTER COLUMN id SET DEFAULT nextval('public.f2_id_seq'::regclass);

ALTER TABLE ONLY public.file ALTER COLUMN id SET DEFAULT nextval('public.file_id_seq'::regclass);

ALTER TABLE ONLY public.filedownloadlog ALTER COLUMN id SET DEFAULT nextval('public.filedownloadlog_id_seq'::regclass);

ALTER TABLE ONLY public.fileopsqueue ALTER COLUMN id SET DEFAULT nextval('public.fileopsqueue_id_seq'::regclass);

ALTER TABLE ONLY public.fileuploadlog ALTER COLUMN id SET DEFAULT nextval('public.fileuploadlog_id_seq'::regclass);

ALTER TABLE ONLY public.footprint ALTER COLUMN id SET DEFAULT nextval('public.footprint_id_seq'::regclass);

ALTER TABLE ONLY public.fulltextheader ALTER COLUMN id SET DEFAULT nextval('public.fulltextheader_id_seq'::regclass);

ALTER TABLE ONLY public.ghost ALTER COLUMN id SET DEFAULT nextval('public.ghost_id_seq'::regclass);

ALTER TABLE ONLY public.glacier ALTER COLUMN id SET DEFAULT nextval('public.glacier_id_seq'::regclass);

ALTER TABLE ONLY public.gmos ALTER COLUMN id SET DEFAULT nextval('public.gmos_id_seq'::regclass);

ALTER TABLE ONLY public.gnirs ALTER COLUMN id SET DEFAULT nextval('public.gnirs_id_seq'::regclass);

ALTER TABLE ONLY public.gpi ALTER COLUMN id SET DEFAULT nextval('public.gpi_id_seq'::regclass);

ALTER TABLE ONLY public.gsaoi ALTER COLUMN id SET DEFAULT nextval('public.gsaoi_id_seq'::regclass);

ALTER TABLE ONLY public.header ALTER COLUMN id SET DEFAULT nextval('public.header_id_seq'::regclass);

ALTER TABLE ONLY public.history ALTER COLUMN id SET DEFAULT nextval('public.history_id_seq'::regclass);

ALTER TABLE ONLY public.ingestqueue ALTER COLUMN id SET DEFAULT nextval('public.ingestqueue_id_seq'::regclass);

ALTER TABLE ONLY public.ipprefix ALTER COLUMN id SET DEFAULT nextval('public.ipprefix_id_seq'::regclass);

ALTER TABLE ONLY public.michelle ALTER COLUMN id SET DEFAULT nextval('public.michelle_id_seq'::regclass);

ALTER TABLE ONLY public.miscfile ALTER COLUMN id SET DEFAULT nextval('public.miscfile_id_seq'::regclass);

ALTER TABLE ONLY public.monitoring ALTER COLUMN id SET DEFAULT nextval('public.monitoring_id_seq'::regclass);

ALTER TABLE ONLY public.nici ALTER COLUMN id SET DEFAULT nextval('public.nici_id_seq'::regclass);

ALTER TABLE ONLY public.nifs ALTER COLUMN id SET DEFAULT nextval('public.nifs_id_seq'::regclass);

ALTER TABLE ONLY public.niri ALTER COLUMN id SET DEFAULT nextval('public.niri_id_seq'::regclass);

ALTER TABLE ONLY public.notification ALTER COLUMN id SET DEFAULT nextval('public.notification_id_seq'::regclass);

ALTER TABLE ONLY public.objcat ALTER COLUMN id SET DEFAULT nextval('public.objcat_id_seq'::regclass);

ALTER TABLE ONLY public.obslog ALTER COLUMN id SET DEFAULT nextval('public.obslog_id_seq'::regclass);

ALTER TABLE ONLY public.obslog_comment ALTER COLUMN id SET DEFAULT nextval('public.obslog_comment_id_seq'::regclass);

ALTER TABLE ONLY public.photstandard ALTER COLUMN id SET DEFAULT nextval('public.photstandard_id_seq'::regclass);

ALTER TABLE ONLY public.photstandardobs ALTER COLUMN id SET DEFAULT nextval('public.photstandardobs_id_seq'::regclass);

ALTER TABLE ONLY public.preview ALTER COLUMN id SET DEFAULT nextval('public.preview_id_seq'::regclass);

ALTER TABLE ONLY public.previewqueue ALTER COLUMN id SET DEFAULT nextval('public.previewqueue_id_seq'::regclass);

ALTER TABLE ONLY public.processinglog ALTER COLUMN id SET DEFAULT nextval('public.processinglog_id_seq'::regclass);

ALTER TABLE ONLY public.processinglog_files ALTER COLUMN id SET DEFAULT nextval('public.processinglog_files_id_seq'::regclass);

ALTER TABLE ONLY public.processingtag ALTER COLUMN id SET DEFAULT nextval('public.processingtag_id_seq'::regclass);

ALTER TABLE ONLY public.program ALTER COLUMN id SET DEFAULT nextval('public.program_id_seq'::regclass);

ALTER TABLE ONLY public.programpublication ALTER COLUMN id SET DEFAULT nextval('public.programpublication_id_seq'::regclass);

ALTER TABLE ONLY public.provenance ALTER COLUMN id SET DEFAULT nextval('public.provenance_id_seq'::regclass);

ALTER TABLE ONLY public.publication ALTER COLUMN id SET DEFAULT nextval('public.publication_id_seq'::regclass);

ALTER TABLE ONLY public.qametriciq ALTER COLUMN id SET DEFAULT nextval('public.qametriciq_id_seq'::regclass);

ALTER TABLE ONLY public.qametricpe ALTER COLUMN id SET DEFAULT nextval('public.qametricpe_id_seq'::regclass);

ALTER TABLE ONLY public.qametricsb ALTER COLUMN id SET DEFAULT nextval('public.qametricsb_id_seq'::regclass);

ALTER TABLE ONLY public.qametriczp ALTER COLUMN id SET DEFAULT nextval('public.qametriczp_id_seq'::regclass);

ALTER TABLE ONLY public.qareport ALTER COLUMN id SET DEFAULT nextval('public.qareport_id_seq'::regclass);

ALTER TABLE ONLY public.querylog ALTER COLUMN id SET DEFAULT nextval('public.querylog_id_seq'::regclass);

ALTER TABLE ONLY public.reducequeue ALTER COLUMN id SET DEFAULT nextval('public.reducequeue_id_seq'::regclass);

ALTER TABLE ONLY public.reduction ALTER COLUMN id SET DEFAULT nextval('public.reduction_id_seq'::regclass);

ALTER TABLE ONLY public.semester ALTER COLUMN id SET DEFAULT nextval('public.semester_id_seq'::regclass);

ALTER TABLE ONLY public.tape ALTER COLUMN id SET DEFAULT nextval('public.tape_id_seq'::regclass);

ALTER TABLE ONLY public.tapefile ALTER COLUMN id SET DEFAULT nextval('public.tapefile_id_seq'::regclass);

ALTER TABLE ONLY public.taperead ALTER COLUMN id SET DEFAULT nextval('public.taperead_id_seq'::regclass);

ALTER TABLE ONLY public.tapewrite ALTER COLUMN id SET DEFAULT nextval('public.tapewrite_id_seq'::regclass);

ALTER TABLE ONLY public.usagelog ALTER COLUMN id SET DEFAULT nextval('public.usagelog_id_seq'::regclass);

ALTER TABLE ONLY public.usagelog_analysis ALTER COLUMN id SET DEFAULT nextval('public.usagelog_analysis_id_seq'::regclass);

ALTER TABLE ONLY public.userprogram ALTER COLUMN id SET DEFAULT nextval('public.userprogram_id_seq'::regclass);

ALTER TABLE ONLY public.users ALTER COLUMN id SET DEFAULT nextval('public.users_id_seq'::regclass);

ALTER TABLE ONLY fitsfleet.fleet_instances
    ADD CONSTRAINT fleet_instances_pkey PRIMARY KEY (instance_id);

ALTER TABLE ONLY fitsfleet.fleets
    ADD CONSTRAINT fleets_pkey PRIMARY KEY (name);

ALTER TABLE ONLY fitsfleet.ingest_ledger
    ADD CONSTRAINT ingest_ledger_path_filename_key UNIQUE (path, filename);

ALTER TABLE ONLY fitsfleet.ingest_ledger
    ADD CONSTRAINT ingest_ledger_pkey PRIMARY KEY (id);

ALTER TABLE ONLY fitsfleet.preview_claims
    ADD CONSTRAINT preview_claims_pkey PRIMARY KEY (queue_id);

ALTER TABLE ONLY fitsfleet.rollcall_findings
    ADD CONSTRAINT rollcall_findings_pkey PRIMARY KEY (scope, diskfile_id);

ALTER TABLE ONLY fitsfleet.rollcall_runs
    ADD CONSTRAINT rollcall_runs_pkey PRIMARY KEY (scope);

ALTER TABLE ONLY fitsfleet.run_events
    ADD CONSTRAINT run_events_pkey PRIMARY KEY (run_id, seq);

ALTER TABLE ONLY fitsfleet.run_journals
    ADD CONSTRAINT run_journals_pkey PRIMARY KEY (run_id);

ALTER TABLE ONLY fitsfleet.run_leases
    ADD CONSTRAINT run_leases_pkey PRIMARY KEY (run_id);

ALTER TABLE ONLY fitsfleet.run_snapshots
    ADD CONSTRAINT run_snapshots_pkey PRIMARY KEY (run_id, seq);

ALTER TABLE ONLY fitsfleet.run_steps
    ADD CONSTRAINT run_steps_pkey PRIMARY KEY (run_id, step);

ALTER TABLE ONLY fitsfleet.runs
    ADD CONSTRAINT runs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY fitsfleet.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);

ALTER TABLE ONLY public.calcache
    ADD CONSTRAINT calcache_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.calcachequeue
    ADD CONSTRAINT calcachequeue_obs_hid_inprogress_fail_dt_key UNIQUE (obs_hid, inprogress, fail_dt);

ALTER TABLE ONLY public.calcachequeue
    ADD CONSTRAINT calcachequeue_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.diskfile
    ADD CONSTRAINT diskfile_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.diskfilereport
    ADD CONSTRAINT diskfilereport_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.downloadlog
    ADD CONSTRAINT downloadlog_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.exportqueue
    ADD CONSTRAINT exportqueue_filename_inprogress_fail_dt_destination_key UNIQUE (filename, inprogress, fail_dt, destination);

ALTER TABLE ONLY public.exportqueue
    ADD CONSTRAINT exportqueue_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.f2
    ADD CONSTRAINT f2_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.file
    ADD CONSTRAINT file_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.filedownloadlog
    ADD CONSTRAINT filedownloadlog_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.fileopsqueue
    ADD CONSTRAINT fileopsqueue_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.fileuploadlog
    ADD CONSTRAINT fileuploadlog_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.footprint
    ADD CONSTRAINT footprint_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.fulltextheader
    ADD CONSTRAINT fulltextheader_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.ghost
    ADD CONSTRAINT ghost_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.glacier
    ADD CONSTRAINT glacier_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.gmos
    ADD CONSTRAINT gmos_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.gnirs
    ADD CONSTRAINT gnirs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.gpi
    ADD CONSTRAINT gpi_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.gsaoi
    ADD CONSTRAINT gsaoi_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.header
    ADD CONSTRAINT header_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.history
    ADD CONSTRAINT history_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.ingestqueue
    ADD CONSTRAINT ingestqueue_filename_path_inprogress_fail_dt_key UNIQUE (filename, path, inprogress, fail_dt);

ALTER TABLE ONLY public.ingestqueue
    ADD CONSTRAINT ingestqueue_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.ipprefix
    ADD CONSTRAINT ipprefix_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.michelle
    ADD CONSTRAINT michelle_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.miscfile
    ADD CONSTRAINT miscfile_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.monitoring
    ADD CONSTRAINT monitoring_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.nici
    ADD CONSTRAINT nici_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.nifs
    ADD CONSTRAINT nifs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.niri
    ADD CONSTRAINT niri_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.notification
    ADD CONSTRAINT notification_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.objcat
    ADD CONSTRAINT objcat_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.obslog_comment
    ADD CONSTRAINT obslog_comment_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.obslog
    ADD CONSTRAINT obslog_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.photstandard
    ADD CONSTRAINT photstandard_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.photstandardobs
    ADD CONSTRAINT photstandardobs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.preview
    ADD CONSTRAINT preview_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.previewqueue
    ADD CONSTRAINT previewqueue_diskfile_id_inprogress_fail_dt_key UNIQUE (diskfile_id, inprogress, fail_dt);

ALTER TABLE ONLY public.previewqueue
    ADD CONSTRAINT previewqueue_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.processinglog_files
    ADD CONSTRAINT processinglog_files_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.processinglog
    ADD CONSTRAINT processinglog_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.processingtag
    ADD CONSTRAINT processingtag_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.program
    ADD CONSTRAINT program_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.programpublication
    ADD CONSTRAINT programpublication_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.provenance
    ADD CONSTRAINT provenance_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.publication
    ADD CONSTRAINT publication_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.qametriciq
    ADD CONSTRAINT qametriciq_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.qametricpe
    ADD CONSTRAINT qametricpe_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.qametricsb
    ADD CONSTRAINT qametricsb_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.qametriczp
    ADD CONSTRAINT qametriczp_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.qareport
    ADD CONSTRAINT qareport_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.querylog
    ADD CONSTRAINT querylog_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.reducequeue
    ADD CONSTRAINT reducequeue_filenames_debundle_recipe_inprogress_fail_dt_key UNIQUE (filenames, debundle, recipe, inprogress, fail_dt);

ALTER TABLE ONLY public.reducequeue
    ADD CONSTRAINT reducequeue_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.reduction
    ADD CONSTRAINT reduction_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.semester
    ADD CONSTRAINT semester_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.tape
    ADD CONSTRAINT tape_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.tapefile
    ADD CONSTRAINT tapefile_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.taperead
    ADD CONSTRAINT taperead_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.tapewrite
    ADD CONSTRAINT tapewrite_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.usagelog_analysis
    ADD CONSTRAINT usagelog_analysis_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.usagelog
    ADD CONSTRAINT usagelog_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.userprogram
    ADD CONSTRAINT userprogram_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);

CREATE INDEX fleet_instances_fleet ON fitsfleet.fleet_instances USING btree (fleet);

CREATE INDEX fleets_live ON fitsfleet.fleets USING btree (state) WHERE (state = ANY (ARRAY['launching'::text, 'running'::text, 'ending'::text]));

CREATE INDEX ingest_ledger_finished_at ON fitsfleet.ingest_ledger USING btree (finished_at) WHERE (finished_at IS NOT NULL);

CREATE INDEX ingest_ledger_state_sortkey ON fitsfleet.ingest_ledger USING btree (state, sortkey DESC);

CREATE INDEX ingest_ledger_unfinished ON fitsfleet.ingest_ledger USING btree (id) WHERE (state = ANY (ARRAY['queued'::text, 'active'::text]));

CREATE INDEX preview_claims_claim ON fitsfleet.preview_claims USING btree (claim);

CREATE INDEX runs_created_at ON fitsfleet.runs USING btree (created_at DESC);

CREATE INDEX ix_calcache_cal_hid ON public.calcache USING btree (cal_hid);

CREATE INDEX ix_calcache_caltype ON public.calcache USING btree (caltype);

CREATE INDEX ix_calcache_obs_hid ON public.calcache USING btree (obs_hid);

CREATE INDEX ix_calcache_rank ON public.calcache USING btree (rank);

CREATE INDEX ix_calcachequeue_fail_dt ON public.calcachequeue USING btree (fail_dt);

CREATE INDEX ix_calcachequeue_inprogress ON public.calcachequeue USING btree (inprogress);

CREATE INDEX ix_calcachequeue_obs_hid ON public.calcachequeue USING btree (obs_hid);

CREATE INDEX ix_calcachequeue_sortkey ON public.calcachequeue USING btree (sortkey);

CREATE INDEX ix_diskfile_canonical ON public.diskfile USING btree (canonical);

CREATE INDEX ix_diskfile_entrytime ON public.diskfile USING btree (entrytime);

CREATE INDEX ix_diskfile_file_id ON public.diskfile USING btree (file_id);

CREATE INDEX ix_diskfile_filename ON public.diskfile USING btree (filename);

CREATE INDEX ix_diskfile_lastmod ON public.diskfile USING btree (lastmod);

CREATE INDEX ix_diskfile_present ON public.diskfile USING btree (present);

CREATE INDEX ix_diskfilereport_diskfile_id ON public.diskfilereport USING btree (diskfile_id);

CREATE INDEX ix_diskfilereport_mdstatus ON public.diskfilereport USING btree (mdstatus);

CREATE INDEX ix_downloadlog_usagelog_id ON public.downloadlog USING btree (usagelog_id);

CREATE INDEX ix_exportqueue_destination ON public.exportqueue USING btree (destination);

CREATE INDEX ix_exportqueue_fail_dt ON public.exportqueue USING btree (fail_dt);

CREATE INDEX ix_exportqueue_filename ON public.exportqueue USING btree (filename);

CREATE INDEX ix_exportqueue_inprogress ON public.exportqueue USING btree (inprogress);

CREATE INDEX ix_exportqueue_sortkey ON public.exportqueue USING btree (sortkey);

CREATE INDEX ix_f2_disperser ON public.f2 USING btree (disperser);

CREATE INDEX ix_f2_filter_name ON public.f2 USING btree (filter_name);

CREATE INDEX ix_f2_header_id ON public.f2 USING btree (header_id);

CREATE INDEX ix_f2_lyot_stop ON public.f2 USING btree (lyot_stop);

CREATE INDEX ix_f2_read_mode ON public.f2 USING btree (read_mode);

CREATE UNIQUE INDEX ix_file_name ON public.file USING btree (name);

CREATE INDEX ix_filedownloadlog_diskfile_filename ON public.filedownloadlog USING btree (diskfile_filename);

CREATE INDEX ix_filedownloadlog_usagelog_id ON public.filedownloadlog USING btree (usagelog_id);

CREATE INDEX ix_filedownloadlog_ut_datetime ON public.filedownloadlog USING btree (ut_datetime);

CREATE INDEX ix_fileopsqueue_fail_dt ON public.fileopsqueue USING btree (fail_dt);

CREATE INDEX ix_fileopsqueue_inprogress ON public.fileopsqueue USING btree (inprogress);

CREATE INDEX ix_fileopsqueue_sortkey ON public.fileopsqueue USING btree (sortkey);

CREATE INDEX ix_fileuploadlog_filename ON public.fileuploadlog USING btree (filename);

CREATE INDEX ix_fileuploadlog_usagelog_id ON public.fileuploadlog USING btree (usagelog_id);

CREATE INDEX ix_fileuploadlog_ut_transfer_start ON public.fileuploadlog USING btree (ut_transfer_start);

CREATE INDEX ix_footprint_header_id ON public.footprint USING btree (header_id);

CREATE INDEX ix_fulltextheader_diskfile_id ON public.fulltextheader USING btree (diskfile_id);

CREATE INDEX ix_ghost_arm ON public.ghost USING btree (arm);

CREATE INDEX ix_ghost_detector_name ON public.ghost USING btree (detector_name);

CREATE INDEX ix_ghost_detector_x_bin ON public.ghost USING btree (detector_x_bin);

CREATE INDEX ix_ghost_detector_y_bin ON public.ghost USING btree (detector_y_bin);

CREATE INDEX ix_ghost_focal_plane_mask ON public.ghost USING btree (focal_plane_mask);

CREATE INDEX ix_ghost_gain_setting ON public.ghost USING btree (gain_setting);

CREATE INDEX ix_ghost_header_id ON public.ghost USING btree (header_id);

CREATE INDEX ix_ghost_overscan_subtracted ON public.ghost USING btree (overscan_subtracted);

CREATE INDEX ix_ghost_overscan_trimmed ON public.ghost USING btree (overscan_trimmed);

CREATE INDEX ix_ghost_prepared ON public.ghost USING btree (prepared);

CREATE INDEX ix_ghost_read_speed_setting ON public.ghost USING btree (read_speed_setting);

CREATE INDEX ix_glacier_filename ON public.glacier USING btree (filename);

CREATE INDEX ix_glacier_md5 ON public.glacier USING btree (md5);

CREATE INDEX ix_gmos_amp_read_area ON public.gmos USING btree (amp_read_area);

CREATE INDEX ix_gmos_array_name ON public.gmos USING btree (array_name);

CREATE INDEX ix_gmos_detector_x_bin ON public.gmos USING btree (detector_x_bin);

CREATE INDEX ix_gmos_detector_y_bin ON public.gmos USING btree (detector_y_bin);

CREATE INDEX ix_gmos_disperser ON public.gmos USING btree (disperser);

CREATE INDEX ix_gmos_filter_name ON public.gmos USING btree (filter_name);

CREATE INDEX ix_gmos_focal_plane_mask ON public.gmos USING btree (focal_plane_mask);

CREATE INDEX ix_gmos_gain_setting ON public.gmos USING btree (gain_setting);

CREATE INDEX ix_gmos_header_id ON public.gmos USING btree (header_id);

CREATE INDEX ix_gmos_nod_count ON public.gmos USING btree (nod_count);

CREATE INDEX ix_gmos_nod_pixels ON public.gmos USING btree (nod_pixels);

CREATE INDEX ix_gmos_nodandshuffle ON public.gmos USING btree (nodandshuffle);

CREATE INDEX ix_gmos_overscan_subtracted ON public.gmos USING btree (overscan_subtracted);

CREATE INDEX ix_gmos_overscan_trimmed ON public.gmos USING btree (overscan_trimmed);

CREATE INDEX ix_gmos_prepared ON public.gmos USING btree (prepared);

CREATE INDEX ix_gmos_read_speed_setting ON public.gmos USING btree (read_speed_setting);

CREATE INDEX ix_gnirs_camera ON public.gnirs USING btree (camera);

CREATE INDEX ix_gnirs_disperser ON public.gnirs USING btree (disperser);

CREATE INDEX ix_gnirs_filter_name ON public.gnirs USING btree (filter_name);

CREATE INDEX ix_gnirs_header_id ON public.gnirs USING btree (header_id);

CREATE INDEX ix_gnirs_read_mode ON public.gnirs USING btree (read_mode);

CREATE INDEX ix_gnirs_well_depth_setting ON public.gnirs USING btree (well_depth_setting);

CREATE INDEX ix_gpi_astrometric_standard ON public.gpi USING btree (astrometric_standard);

CREATE INDEX ix_gpi_disperser ON public.gpi USING btree (disperser);

CREATE INDEX ix_gpi_filter_name ON public.gpi USING btree (filter_name);

CREATE INDEX ix_gpi_focal_plane_mask ON public.gpi USING btree (focal_plane_mask);

CREATE INDEX ix_gpi_header_id ON public.gpi USING btree (header_id);

CREATE INDEX ix_gpi_prism ON public.gpi USING btree (prism);

CREATE INDEX ix_gpi_pupil_mask ON public.gpi USING btree (pupil_mask);

CREATE INDEX ix_gpi_wollaston ON public.gpi USING btree (wollaston);

CREATE INDEX ix_gsaoi_filter_name ON public.gsaoi USING btree (filter_name);

CREATE INDEX ix_gsaoi_header_id ON public.gsaoi USING btree (header_id);

CREATE INDEX ix_gsaoi_read_mode ON public.gsaoi USING btree (read_mode);

CREATE INDEX ix_header_calibration_program ON public.header USING btree (calibration_program);

CREATE INDEX ix_header_camera ON public.header USING btree (camera);

CREATE INDEX ix_header_central_wavelength ON public.header USING btree (central_wavelength);

CREATE INDEX ix_header_data_label ON public.header USING btree (data_label);

CREATE INDEX ix_header_dec ON public.header USING btree ("dec");

CREATE INDEX ix_header_diskfile_id ON public.header USING btree (diskfile_id);

CREATE INDEX ix_header_disperser ON public.header USING btree (disperser);

CREATE INDEX ix_header_engineering ON public.header USING btree (engineering);

CREATE INDEX ix_header_filter_name ON public.header USING btree (filter_name);

CREATE INDEX ix_header_focal_plane_mask ON public.header USING btree (focal_plane_mask);

CREATE INDEX ix_header_instrument ON public.header USING btree (instrument);

CREATE INDEX ix_header_mode ON public.header USING btree (mode);

CREATE INDEX ix_header_object ON public.header USING btree (object);

CREATE INDEX ix_header_observation_class ON public.header USING btree (observation_class);

CREATE INDEX ix_header_observation_id ON public.header USING btree (observation_id);

CREATE INDEX ix_header_observation_type ON public.header USING btree (observation_type);

CREATE INDEX ix_header_processing_tag ON public.header USING btree (processing_tag);

CREATE INDEX ix_header_program_id ON public.header USING btree (program_id);

CREATE INDEX ix_header_pupil_mask ON public.header USING btree (pupil_mask);

CREATE INDEX ix_header_qa_state ON public.header USING btree (qa_state);

CREATE INDEX ix_header_ra ON public.header USING btree (ra);

CREATE INDEX ix_header_reduction ON public.header USING btree (reduction);

CREATE INDEX ix_header_science_verification ON public.header USING btree (science_verification);

CREATE INDEX ix_header_spectroscopy ON public.header USING btree (spectroscopy);

CREATE INDEX ix_header_telescope ON public.header USING btree (telescope);

CREATE INDEX ix_header_ut_datetime ON public.header USING btree (ut_datetime);

CREATE INDEX ix_header_ut_datetime_desc_nullslast ON public.header USING btree (ut_datetime DESC NULLS LAST);

CREATE INDEX ix_header_ut_datetime_secs ON public.header USING btree (ut_datetime_secs);

CREATE INDEX ix_history_diskfile_id ON public.history USING btree (diskfile_id);

CREATE INDEX ix_ingestqueue_fail_dt ON public.ingestqueue USING btree (fail_dt);

CREATE INDEX ix_ingestqueue_filename ON public.ingestqueue USING btree (filename);

CREATE INDEX ix_ingestqueue_inprogress ON public.ingestqueue USING btree (inprogress);

CREATE INDEX ix_ingestqueue_sortkey ON public.ingestqueue USING btree (sortkey);

CREATE UNIQUE INDEX ix_ipprefix_prefix ON public.ipprefix USING btree (prefix);

CREATE INDEX ix_michelle_disperser ON public.michelle USING btree (disperser);

CREATE INDEX ix_michelle_filter_name ON public.michelle USING btree (filter_name);

CREATE INDEX ix_michelle_focal_plane_mask ON public.michelle USING btree (focal_plane_mask);

CREATE INDEX ix_michelle_header_id ON public.michelle USING btree (header_id);

CREATE INDEX ix_michelle_read_mode ON public.michelle USING btree (read_mode);

CREATE INDEX ix_miscfile_diskfile_id ON public.miscfile USING btree (diskfile_id);

CREATE INDEX ix_miscfile_program_id ON public.miscfile USING btree (program_id);

CREATE INDEX ix_monitoring_data_label ON public.monitoring USING btree (data_label);

CREATE INDEX ix_monitoring_filename ON public.monitoring USING btree (filename);

CREATE INDEX ix_monitoring_header_id ON public.monitoring USING btree (header_id);

CREATE INDEX ix_monitoring_keyword ON public.monitoring USING btree (keyword);

CREATE INDEX ix_monitoring_processing_tag ON public.monitoring USING btree (processing_tag);

CREATE INDEX ix_monitoring_ut_datetime ON public.monitoring USING btree (ut_datetime);

CREATE INDEX ix_nici_disperser ON public.nici USING btree (disperser);

CREATE INDEX ix_nici_filter_name ON public.nici USING btree (filter_name);

CREATE INDEX ix_nici_focal_plane_mask ON public.nici USING btree (focal_plane_mask);

CREATE INDEX ix_nici_header_id ON public.nici USING btree (header_id);

CREATE INDEX ix_nifs_disperser ON public.nifs USING btree (disperser);

CREATE INDEX ix_nifs_filter_name ON public.nifs USING btree (filter_name);

CREATE INDEX ix_nifs_header_id ON public.nifs USING btree (header_id);

CREATE INDEX ix_nifs_read_mode ON public.nifs USING btree (read_mode);

CREATE INDEX ix_niri_camera ON public.niri USING btree (camera);

CREATE INDEX ix_niri_data_section ON public.niri USING btree (data_section);

CREATE INDEX ix_niri_disperser ON public.niri USING btree (disperser);

CREATE INDEX ix_niri_filter_name ON public.niri USING btree (filter_name);

CREATE INDEX ix_niri_header_id ON public.niri USING btree (header_id);

CREATE INDEX ix_niri_read_mode ON public.niri USING btree (read_mode);

CREATE INDEX ix_niri_well_depth_setting ON public.niri USING btree (well_depth_setting);

CREATE INDEX ix_objcat_header_id ON public.objcat USING btree (header_id);

CREATE INDEX ix_obslog_comment_data_label ON public.obslog_comment USING btree (data_label);

CREATE INDEX ix_obslog_date ON public.obslog USING btree (date);

CREATE INDEX ix_obslog_diskfile_id ON public.obslog USING btree (diskfile_id);

CREATE INDEX ix_obslog_program_id ON public.obslog USING btree (program_id);

CREATE INDEX ix_photstandard_dec ON public.photstandard USING btree ("dec");

CREATE INDEX ix_photstandard_ra ON public.photstandard USING btree (ra);

CREATE INDEX ix_photstandardobs_footprint_id ON public.photstandardobs USING btree (footprint_id);

CREATE INDEX ix_photstandardobs_photstandard_id ON public.photstandardobs USING btree (photstandard_id);

CREATE INDEX ix_preview_diskfile_id ON public.preview USING btree (diskfile_id);

CREATE UNIQUE INDEX ix_previewqueue_diskfile_id ON public.previewqueue USING btree (diskfile_id);

CREATE INDEX ix_previewqueue_fail_dt ON public.previewqueue USING btree (fail_dt);

CREATE INDEX ix_previewqueue_inprogress ON public.previewqueue USING btree (inprogress);

CREATE INDEX ix_previewqueue_sortkey ON public.previewqueue USING btree (sortkey);

CREATE INDEX ix_processinglog_failed ON public.processinglog USING btree (failed);

CREATE INDEX ix_processinglog_files_filename ON public.processinglog_files USING btree (filename);

CREATE INDEX ix_processinglog_files_md5sum ON public.processinglog_files USING btree (md5sum);

CREATE INDEX ix_processinglog_files_output ON public.processinglog_files USING btree (output);

CREATE INDEX ix_processinglog_files_processinglog_id ON public.processinglog_files USING btree (processinglog_id);

CREATE INDEX ix_processinglog_processing_tag ON public.processinglog USING btree (processing_tag);

CREATE INDEX ix_processingtag_domain ON public.processingtag USING btree (domain);

CREATE INDEX ix_processingtag_priority ON public.processingtag USING btree (priority);

CREATE INDEX ix_processingtag_published ON public.processingtag USING btree (published);

CREATE UNIQUE INDEX ix_processingtag_tag ON public.processingtag USING btree (tag);

CREATE INDEX ix_program_pi_coi_names ON public.program USING btree (pi_coi_names);

CREATE UNIQUE INDEX ix_program_program_id ON public.program USING btree (program_id);

CREATE INDEX ix_programpublication_program_id ON public.programpublication USING btree (program_id);

CREATE INDEX ix_programpublication_publication_id ON public.programpublication USING btree (publication_id);

CREATE INDEX ix_provenance_diskfile_id ON public.provenance USING btree (diskfile_id);

CREATE UNIQUE INDEX ix_publication_bibcode ON public.publication USING btree (bibcode);

CREATE INDEX ix_qametriciq_datalabel ON public.qametriciq USING btree (datalabel);

CREATE INDEX ix_qametriciq_qareport_id ON public.qametriciq USING btree (qareport_id);

CREATE INDEX ix_qametricpe_datalabel ON public.qametricpe USING btree (datalabel);

CREATE INDEX ix_qametricpe_qareport_id ON public.qametricpe USING btree (qareport_id);

CREATE INDEX ix_qametricsb_datalabel ON public.qametricsb USING btree (datalabel);

CREATE INDEX ix_qametricsb_qareport_id ON public.qametricsb USING btree (qareport_id);

CREATE INDEX ix_qametriczp_datalabel ON public.qametriczp USING btree (datalabel);

CREATE INDEX ix_qametriczp_qareport_id ON public.qametriczp USING btree (qareport_id);

CREATE INDEX ix_querylog_summarytype ON public.querylog USING btree (summarytype);

CREATE INDEX ix_querylog_usagelog_id ON public.querylog USING btree (usagelog_id);

CREATE INDEX ix_reducequeue_fail_dt ON public.reducequeue USING btree (fail_dt);

CREATE INDEX ix_reducequeue_inprogress ON public.reducequeue USING btree (inprogress);

CREATE INDEX ix_reducequeue_sortkey ON public.reducequeue USING btree (sortkey);

CREATE INDEX ix_reduction_header_id ON public.reduction USING btree (header_id);

CREATE INDEX ix_reduction_processing_intent ON public.reduction USING btree (processing_intent);

CREATE INDEX ix_reduction_processing_level ON public.reduction USING btree (processing_level);

CREATE INDEX ix_semester_name ON public.semester USING btree (name);

CREATE INDEX ix_tape_active ON public.tape USING btree (active);

CREATE INDEX ix_tape_full ON public.tape USING btree ("full");

CREATE INDEX ix_tape_label ON public.tape USING btree (label);

CREATE INDEX ix_tape_set ON public.tape USING btree (set);

CREATE INDEX ix_tapefile_filename ON public.tapefile USING btree (filename);

CREATE INDEX ix_tapefile_lastmod ON public.tapefile USING btree (lastmod);

CREATE INDEX ix_tapefile_md5 ON public.tapefile USING btree (md5);

CREATE INDEX ix_tapefile_size ON public.tapefile USING btree (size);

CREATE INDEX ix_tapefile_tapewrite_id ON public.tapefile USING btree (tapewrite_id);

CREATE INDEX ix_taperead_filename ON public.taperead USING btree (filename);

CREATE INDEX ix_taperead_md5 ON public.taperead USING btree (md5);

CREATE INDEX ix_tapewrite_filenum ON public.tapewrite USING btree (filenum);

CREATE INDEX ix_tapewrite_succeeded ON public.tapewrite USING btree (succeeded);

CREATE INDEX ix_tapewrite_tape_id ON public.tapewrite USING btree (tape_id);

CREATE INDEX ix_usagelog_analysis_asn ON public.usagelog_analysis USING btree (asn);

CREATE INDEX ix_usagelog_analysis_prefix_id ON public.usagelog_analysis USING btree (prefix_id);

CREATE INDEX ix_usagelog_analysis_usagelog_id ON public.usagelog_analysis USING btree (usagelog_id);

CREATE INDEX ix_usagelog_ip_address ON public.usagelog USING btree (ip_address);

CREATE INDEX ix_usagelog_status ON public.usagelog USING btree (status);

CREATE INDEX ix_usagelog_this ON public.usagelog USING btree (this);

CREATE INDEX ix_usagelog_user_id ON public.usagelog USING btree (user_id);

CREATE INDEX ix_usagelog_utdatetime ON public.usagelog USING btree (utdatetime);

CREATE INDEX ix_userprogram_filename ON public.userprogram USING btree (filename);

CREATE INDEX ix_userprogram_observation_id ON public.userprogram USING btree (observation_id);

CREATE INDEX ix_userprogram_path ON public.userprogram USING btree (path);

CREATE INDEX ix_userprogram_program_id ON public.userprogram USING btree (program_id);

CREATE INDEX ix_userprogram_user_id ON public.userprogram USING btree (user_id);

CREATE INDEX ix_users_cookie ON public.users USING btree (cookie);

CREATE INDEX ix_users_noirlab_id ON public.users USING btree (noirlab_id);

CREATE INDEX ix_users_orcid_id ON public.users USING btree (orcid_id);

CREATE INDEX ix_users_username ON public.users USING btree (username);

ALTER TABLE ONLY fitsfleet.fleet_instances
    ADD CONSTRAINT fleet_instances_fleet_fkey FOREIGN KEY (fleet) REFERENCES fitsfleet.fleets(name) ON DELETE CASCADE;

ALTER TABLE ONLY fitsfleet.rollcall_findings
    ADD CONSTRAINT rollcall_findings_scope_fkey FOREIGN KEY (scope) REFERENCES fitsfleet.rollcall_runs(scope) ON DELETE CASCADE;

ALTER TABLE ONLY fitsfleet.run_steps
    ADD CONSTRAINT run_steps_run_id_fkey FOREIGN KEY (run_id) REFERENCES fitsfleet.runs(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.calcache
    ADD CONSTRAINT calcache_cal_hid_fkey FOREIGN KEY (cal_hid) REFERENCES public.header(id);

ALTER TABLE ONLY public.calcache
    ADD CONSTRAINT calcache_obs_hid_fkey FOREIGN KEY (obs_hid) REFERENCES public.header(id);

ALTER TABLE ONLY public.calcachequeue
    ADD CONSTRAINT calcachequeue_obs_hid_fkey FOREIGN KEY (obs_hid) REFERENCES public.header(id);

ALTER TABLE ONLY public.diskfile
    ADD CONSTRAINT diskfile_file_id_fkey FOREIGN KEY (file_id) REFERENCES public.file(id);

ALTER TABLE ONLY public.diskfilereport
    ADD CONSTRAINT diskfilereport_diskfile_id_fkey FOREIGN KEY (diskfile_id) REFERENCES public.diskfile(id);

ALTER TABLE ONLY public.downloadlog
    ADD CONSTRAINT downloadlog_usagelog_id_fkey FOREIGN KEY (usagelog_id) REFERENCES public.usagelog(id);

ALTER TABLE ONLY public.f2
    ADD CONSTRAINT f2_header_id_fkey FOREIGN KEY (header_id) REFERENCES public.header(id);

ALTER TABLE ONLY public.filedownloadlog
    ADD CONSTRAINT filedownloadlog_usagelog_id_fkey FOREIGN KEY (usagelog_id) REFERENCES public.usagelog(id);

ALTER TABLE ONLY public.fileuploadlog
    ADD CONSTRAINT fileuploadlog_usagelog_id_fkey FOREIGN KEY (usagelog_id) REFERENCES public.usagelog(id);

ALTER TABLE ONLY public.footprint
    ADD CONSTRAINT footprint_header_id_fkey FOREIGN KEY (header_id) REFERENCES public.header(id);

ALTER TABLE ONLY public.fulltextheader
    ADD CONSTRAINT fulltextheader_diskfile_id_fkey FOREIGN KEY (diskfile_id) REFERENCES public.diskfile(id);

ALTER TABLE ONLY public.ghost
    ADD CONSTRAINT ghost_header_id_fkey FOREIGN KEY (header_id) REFERENCES public.header(id);

ALTER TABLE ONLY public.gmos
    ADD CONSTRAINT gmos_header_id_fkey FOREIGN KEY (header_id) REFERENCES public.header(id);

ALTER TABLE ONLY public.gnirs
    ADD CONSTRAINT gnirs_header_id_fkey FOREIGN KEY (header_id) REFERENCES public.header(id);

ALTER TABLE ONLY public.gpi
    ADD CONSTRAINT gpi_header_id_fkey FOREIGN KEY (header_id) REFERENCES public.header(id);

ALTER TABLE ONLY public.gsaoi
    ADD CONSTRAINT gsaoi_header_id_fkey FOREIGN KEY (header_id) REFERENCES public.header(id);

ALTER TABLE ONLY public.header
    ADD CONSTRAINT header_diskfile_id_fkey FOREIGN KEY (diskfile_id) REFERENCES public.diskfile(id);

ALTER TABLE ONLY public.history
    ADD CONSTRAINT history_diskfile_id_fkey FOREIGN KEY (diskfile_id) REFERENCES public.diskfile(id);

ALTER TABLE ONLY public.michelle
    ADD CONSTRAINT michelle_header_id_fkey FOREIGN KEY (header_id) REFERENCES public.header(id);

ALTER TABLE ONLY public.miscfile
    ADD CONSTRAINT miscfile_diskfile_id_fkey FOREIGN KEY (diskfile_id) REFERENCES public.diskfile(id);

ALTER TABLE ONLY public.monitoring
    ADD CONSTRAINT monitoring_header_id_fkey FOREIGN KEY (header_id) REFERENCES public.header(id);

ALTER TABLE ONLY public.nici
    ADD CONSTRAINT nici_header_id_fkey FOREIGN KEY (header_id) REFERENCES public.header(id);

ALTER TABLE ONLY public.nifs
    ADD CONSTRAINT nifs_header_id_fkey FOREIGN KEY (header_id) REFERENCES public.header(id);

ALTER TABLE ONLY public.niri
    ADD CONSTRAINT niri_header_id_fkey FOREIGN KEY (header_id) REFERENCES public.header(id);

ALTER TABLE ONLY public.objcat
    ADD CONSTRAINT objcat_header_id_fkey FOREIGN KEY (header_id) REFERENCES public.header(id);

ALTER TABLE ONLY public.obslog
    ADD CONSTRAINT obslog_diskfile_id_fkey FOREIGN KEY (diskfile_id) REFERENCES public.diskfile(id);

ALTER TABLE ONLY public.photstandardobs
    ADD CONSTRAINT photstandardobs_footprint_id_fkey FOREIGN KEY (footprint_id) REFERENCES public.footprint(id);

ALTER TABLE ONLY public.photstandardobs
    ADD CONSTRAINT photstandardobs_photstandard_id_fkey FOREIGN KEY (photstandard_id) REFERENCES public.photstandard(id);

ALTER TABLE ONLY public.preview
    ADD CONSTRAINT preview_diskfile_id_fkey FOREIGN KEY (diskfile_id) REFERENCES public.diskfile(id);

ALTER TABLE ONLY public.previewqueue
    ADD CONSTRAINT previewqueue_diskfile_id_fkey FOREIGN KEY (diskfile_id) REFERENCES public.diskfile(id);

ALTER TABLE ONLY public.processinglog_files
    ADD CONSTRAINT processinglog_files_processinglog_id_fkey FOREIGN KEY (processinglog_id) REFERENCES public.processinglog(id);

ALTER TABLE ONLY public.programpublication
    ADD CONSTRAINT programpublication_program_id_fkey FOREIGN KEY (program_id) REFERENCES public.program(id);

ALTER TABLE ONLY public.programpublication
    ADD CONSTRAINT programpublication_publication_id_fkey FOREIGN KEY (publication_id) REFERENCES public.publication(id);

ALTER TABLE ONLY public.provenance
    ADD CONSTRAINT provenance_diskfile_id_fkey FOREIGN KEY (diskfile_id) REFERENCES public.diskfile(id);

ALTER TABLE ONLY public.qametriciq
    ADD CONSTRAINT qametriciq_qareport_id_fkey FOREIGN KEY (qareport_id) REFERENCES public.qareport(id);

ALTER TABLE ONLY public.qametricpe
    ADD CONSTRAINT qametricpe_qareport_id_fkey FOREIGN KEY (qareport_id) REFERENCES public.qareport(id);

ALTER TABLE ONLY public.qametricsb
    ADD CONSTRAINT qametricsb_qareport_id_fkey FOREIGN KEY (qareport_id) REFERENCES public.qareport(id);

ALTER TABLE ONLY public.qametriczp
    ADD CONSTRAINT qametriczp_qareport_id_fkey FOREIGN KEY (qareport_id) REFERENCES public.qareport(id);

ALTER TABLE ONLY public.querylog
    ADD CONSTRAINT querylog_usagelog_id_fkey FOREIGN KEY (usagelog_id) REFERENCES public.usagelog(id);

ALTER TABLE ONLY public.reduction
    ADD CONSTRAINT reduction_header_id_fkey FOREIGN KEY (header_id) REFERENCES public.header(id);

ALTER TABLE ONLY public.tapefile
    ADD CONSTRAINT tapefile_tapewrite_id_fkey FOREIGN KEY (tapewrite_id) REFERENCES public.tapewrite(id);

ALTER TABLE ONLY public.tapewrite
    ADD CONSTRAINT tapewrite_tape_id_fkey FOREIGN KEY (tape_id) REFERENCES public.tape(id);

ALTER TABLE ONLY public.usagelog_analysis
    ADD CONSTRAINT usagelog_analysis_prefix_id_fkey FOREIGN KEY (prefix_id) REFERENCES public.ipprefix(id);

ALTER TABLE ONLY public.usagelog_analysis
    ADD CONSTRAINT usagelog_analysis_usagelog_id_fkey FOREIGN KEY (usagelog_id) REFERENCES public.usagelog(id);

ALTER TABLE ONLY public.usagelog
    ADD CONSTRAINT usagelog_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id);

ALTER TABLE ONLY public.userprogram
    ADD CONSTRAINT userprogram_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id);
