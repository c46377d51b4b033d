-- 0001 archive schema: the FitsStorage v3 tables, enum types and indexes.
--
-- Column for column the schema that FitsStorage v3 (main @ 426e1308) creates with
-- is_server and is_archive set, so the archive web application runs on a
-- database that fitsfleet built. test/reference-schema.test.ts compares it with
-- the upstream DDL in shared/docs/reference/fitsstorage-v3-schema.sql.
--
-- Naming follows the upstream ORM on purpose: SERIAL ids (sequence <table>_id_seq),
-- ix_<table>_<column> indexes, unnamed UNIQUE constraints. Do not "tidy" it;
-- the web application and the calibration queries depend on these names and on
-- the order of the enum values.
--
-- Grants for the fitsweb and dragons roles are deployment-specific and are not
-- part of the schema.

CREATE TYPE procmode AS ENUM ('Failed', 'Raw', 'Quick-Look', 'Science-Quality', 'Quality-Assessment');

CREATE TYPE telescope AS ENUM ('Gemini-North', 'Gemini-South');

CREATE TYPE obstype AS ENUM ('DARK', 'ARC', 'FLAT', 'BIAS', 'OBJECT', 'PINHOLE', 'RONCHI', 'CAL', 'FRINGE', 'MASK', 'STANDARD', 'SLITILLUM', 'BPM');

CREATE TYPE obsclass AS ENUM ('dayCal', 'partnerCal', 'acqCal', 'acq', 'science', 'progCal', 'nightCal');

CREATE TYPE detector_gain_setting AS ENUM ('None', 'high', 'low', 'standard');

CREATE TYPE detector_readspeed_setting AS ENUM ('None', 'fast', 'medium', 'slow', 'standard', 'red:fast,blue:fast', 'red:fast,blue:medium', 'red:fast,blue:slow', 'red:medium,blue:fast', 'red:medium,blue:medium', 'red:medium,blue:slow', 'red:slow,blue:fast', 'red:slow,blue:medium', 'red:slow,blue:slow');

CREATE TYPE detector_welldepth_setting AS ENUM ('None', 'Shallow', 'Deep', 'Invalid');

CREATE TYPE mode AS ENUM ('imaging', 'spectroscopy', 'LS', 'MOS', 'IFS', 'IFP');

CREATE TYPE qa_state AS ENUM ('Fail', 'CHECK', 'Undefined', 'Usable', 'Pass');

CREATE TYPE reduction_state AS ENUM ('RAW', 'PREPARED', 'PROCESSED_FLAT', 'PROCESSED_BIAS', 'PROCESSED_FRINGE', 'PROCESSED_ARC', 'PROCESSED_DARK', 'PROCESSED_TELLURIC', 'PROCESSED_SCIENCE', 'PROCESSED_BPM', 'PROCESSED_STANDARD', 'PROCESSED_SLITILLUM', 'PROCESSED_PINHOLE', 'PROCESSED_UNKNOWN');

CREATE TYPE mdstatus AS ENUM ('CORRECT', 'NOPASS', 'NODATE', 'BAD', 'ENG', 'EXCEPTION', 'NOTGEMINI');

CREATE TYPE gmos_read_speed_setting AS ENUM ('slow', 'fast');

CREATE TYPE gmos_gain_setting AS ENUM ('low', 'high');

CREATE TYPE gnirs_read_mode AS ENUM ('Very Faint Objects', 'Faint Objects', 'Bright Objects', 'Very Bright Objects', 'Invalid');

CREATE TYPE gnirs_well_depth_setting AS ENUM ('Shallow', 'Deep', 'Invalid');

CREATE TYPE niri_disperser AS ENUM ('Hgrismf32_G5228', 'Hgrism_G5203', 'Jgrismf32_G5226', 'Jgrism_G5202', 'Kgrismf32_G5227', 'Kgrism_G5204', 'Lgrism_G5205', 'Mgrism_G5206', 'MIRROR');

CREATE TYPE niri_read_mode AS ENUM ('High Background', 'Medium Background', 'Low Background', 'Invalid');

CREATE TYPE niri_well_depth_setting AS ENUM ('Shallow', 'Deep', 'Invalid');

CREATE TYPE niri_data_section AS ENUM ('Section(x1=0, x2=1024, y1=0, y2=1024)', 'Section(x1=0, x2=256, y1=0, y2=256)', 'Section(x1=0, x2=512, y1=0, y2=512)', 'Section(x1=0, x2=768, y1=0, y2=768)', 'Section(x1=256, x2=769, y1=0, y2=1024)', 'Section(x1=256, x2=769, y1=256, y2=768)', 'Section(x1=64, x2=192, y1=64, y2=192)', 'None');

CREATE TYPE niri_camera AS ENUM ('datum', 'f13.9', 'f14', 'f32', 'f6', 'INVALID', 'No Value', 'UNKNOWN');

CREATE TYPE nici_focal_plane_mask AS ENUM ('Clear_G5710', 'F0.22_G5715', 'F0.32_G5714', 'F0.46_G5713', 'F0.65_G5712', 'F0.90_G5711', 'Grid_G5716');

CREATE TYPE nici_disperser AS ENUM ('Block', 'H-50/50_G5701', 'H-CH4-Dichroic_G5704', 'H/K-Dichroic_G5705', 'Mirror_G5702', 'Open');

CREATE TYPE nifs_read_mode AS ENUM ('Faint Object', 'Medium Object', 'Bright Object', 'Invalid');

CREATE TYPE michelle_disperser AS ENUM ('Echelle', 'LowN', 'LowQ', 'MedN1', 'MedN2', 'No Value', 'unknown');

CREATE TYPE michelle_filter AS ENUM ('blank', 'BothBlanks', 'Clear', 'Clear_A', 'F112B21', 'F116B9', 'F125B9', 'F209B42L', 'F66LB', 'F86B2', 'I103B10', 'I105B53', 'I107B4', 'I112B21', 'I116B9', 'I125B9', 'I128B2', 'I185B9', 'I198B27', 'I209B42', 'I79B10', 'I86B2', 'I88B10', 'I97B10', 'IP103B10', 'IP112B21', 'IP116B9', 'IP125B9', 'IP185B9', 'IP198B27', 'IP79B10', 'IP88B10', 'IP97B10', 'No Value', 'NPBlock', 'Poly', 'QBlock');

CREATE TYPE michelle_read_mode AS ENUM ('CHOP', 'NDCHOP', 'STARE', 'chop', 'stare', 'nod', 'chop-nod');

CREATE TYPE michelle_focal_plane_mask AS ENUM ('4_pixels', 'unknown', '8_pixels', 'No Value', '1_pixel', '2_pixels', '3_pixels', '6_pixels', 'pinholeMask', '16_pixels', 'None');

CREATE TYPE ghost_arm AS ENUM ('blue', 'red', 'slitv');

CREATE TYPE ghost_gain_setting AS ENUM ('low', 'high', 'standard');

CREATE TYPE ghost_read_speed_setting AS ENUM ('slow', 'medium', 'fast', 'standard');

CREATE TYPE ghost_focal_plane_masks AS ENUM ('SR', 'HR');

CREATE TYPE debundle_options AS ENUM ('INDIVIDUAL', 'ALL', 'GHOST', 'GHOST-SLIT', 'GHOST-REDBLUE', 'IGRINS-2');

CREATE TYPE caltype AS ENUM ('bias', 'processed_bias', 'dark', 'processed_dark', 'processed_bpm', 'flat', 'processed_flat', 'arc', 'processed_arc', 'pinhole', 'processed_pinhole', 'processed_fringe', 'ronchi_mask', 'lampoff_flat', 'qh_flat', 'domeflat', 'lampoff_domeflat', 'mask', 'slitillum', 'processed_slitillum', 'standard', 'processed_standard', 'telluric', 'processed_telluric', 'polarization_standard', 'astrometric_standard', 'polarization_flat', 'specphot', 'photometric_standard', 'processed_slitflat', 'processed_slit');

CREATE TABLE file (
    id SERIAL NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (id)
);

CREATE UNIQUE INDEX ix_file_name ON file (name);

CREATE TABLE obslog_comment (
    id SERIAL NOT NULL,
    data_label TEXT,
    comment TEXT,
    PRIMARY KEY (id)
);

CREATE INDEX ix_obslog_comment_data_label ON obslog_comment (data_label);

CREATE TABLE publication (
    id SERIAL NOT NULL,
    bibcode TEXT,
    author TEXT,
    title TEXT,
    year INTEGER,
    journal TEXT,
    telescope TEXT,
    instrument TEXT,
    country TEXT,
    wavelength TEXT,
    mode TEXT,
    gstaff BOOLEAN,
    gsa BOOLEAN,
    golden BOOLEAN,
    too BOOLEAN,
    partner TEXT,
    PRIMARY KEY (id)
);

CREATE UNIQUE INDEX ix_publication_bibcode ON publication (bibcode);

CREATE TABLE program (
    id SERIAL NOT NULL,
    program_id TEXT,
    pi_coi_names TEXT,
    title TEXT,
    abstract TEXT,
    PRIMARY KEY (id)
);

CREATE UNIQUE INDEX ix_program_program_id ON program (program_id);

CREATE INDEX ix_program_pi_coi_names ON program (pi_coi_names);

CREATE TABLE processingtag (
    id SERIAL NOT NULL,
    tag TEXT NOT NULL,
    domain TEXT NOT NULL,
    priority INTEGER NOT NULL,
    published BOOLEAN,
    description TEXT,
    PRIMARY KEY (id)
);

CREATE INDEX ix_processingtag_domain ON processingtag (domain);

CREATE UNIQUE INDEX ix_processingtag_tag ON processingtag (tag);

CREATE INDEX ix_processingtag_priority ON processingtag (priority);

CREATE INDEX ix_processingtag_published ON processingtag (published);

CREATE TABLE photstandard (
    id SERIAL NOT NULL,
    name TEXT,
    field TEXT,
    ra NUMERIC(16, 12),
    dec NUMERIC(16, 12),
    u_mag NUMERIC(6, 4),
    v_mag NUMERIC(6, 4),
    g_mag NUMERIC(6, 4),
    r_mag NUMERIC(6, 4),
    i_mag NUMERIC(6, 4),
    z_mag NUMERIC(6, 4),
    y_mag NUMERIC(6, 4),
    j_mag NUMERIC(6, 4),
    h_mag NUMERIC(6, 4),
    k_mag NUMERIC(6, 4),
    lprime_mag NUMERIC(6, 4),
    m_mag NUMERIC(6, 4),
    PRIMARY KEY (id)
);

CREATE INDEX ix_photstandard_ra ON photstandard (ra);

CREATE INDEX ix_photstandard_dec ON photstandard (dec);

CREATE TABLE ingestqueue (
    id SERIAL NOT NULL,
    filename TEXT NOT NULL,
    path TEXT NOT NULL,
    inprogress BOOLEAN,
    fail_dt TIMESTAMP WITHOUT TIME ZONE,
    added TIMESTAMP WITHOUT TIME ZONE,
    force_md5 BOOLEAN,
    force BOOLEAN,
    after TIMESTAMP WITHOUT TIME ZONE,
    no_defer BOOLEAN,
    batch TEXT,
    sortkey TEXT,
    error TEXT,
    md5_before_header_update TEXT,
    md5_after_header_update TEXT,
    header_update TEXT,
    PRIMARY KEY (id),
    UNIQUE (filename, path, inprogress, fail_dt)
);

CREATE INDEX ix_ingestqueue_inprogress ON ingestqueue (inprogress);

CREATE INDEX ix_ingestqueue_sortkey ON ingestqueue (sortkey);

CREATE INDEX ix_ingestqueue_filename ON ingestqueue (filename);

CREATE INDEX ix_ingestqueue_fail_dt ON ingestqueue (fail_dt);

CREATE TABLE exportqueue (
    id SERIAL NOT NULL,
    filename TEXT NOT NULL,
    path TEXT,
    destination TEXT NOT NULL,
    inprogress BOOLEAN,
    fail_dt TIMESTAMP WITHOUT TIME ZONE,
    sortkey TEXT,
    added TIMESTAMP WITHOUT TIME ZONE,
    after TIMESTAMP WITHOUT TIME ZONE,
    error TEXT,
    md5_before_header_update TEXT,
    md5_after_header_update TEXT,
    header_update TEXT,
    PRIMARY KEY (id),
    UNIQUE (filename, inprogress, fail_dt, destination)
);

CREATE INDEX ix_exportqueue_filename ON exportqueue (filename);

CREATE INDEX ix_exportqueue_fail_dt ON exportqueue (fail_dt);

CREATE INDEX ix_exportqueue_inprogress ON exportqueue (inprogress);

CREATE INDEX ix_exportqueue_sortkey ON exportqueue (sortkey);

CREATE INDEX ix_exportqueue_destination ON exportqueue (destination);

CREATE TABLE fileopsqueue (
    id SERIAL NOT NULL,
    filename TEXT,
    inprogress BOOLEAN,
    response_required BOOLEAN,
    fail_dt TIMESTAMP WITHOUT TIME ZONE,
    added TIMESTAMP WITHOUT TIME ZONE,
    after TIMESTAMP WITHOUT TIME ZONE,
    sortkey TIMESTAMP WITHOUT TIME ZONE,
    error TEXT,
    request TEXT NOT NULL,
    response TEXT,
    batch TEXT,
    PRIMARY KEY (id)
);

CREATE INDEX ix_fileopsqueue_fail_dt ON fileopsqueue (fail_dt);

CREATE INDEX ix_fileopsqueue_sortkey ON fileopsqueue (sortkey);

CREATE INDEX ix_fileopsqueue_inprogress ON fileopsqueue (inprogress);

CREATE TABLE reducequeue (
    id SERIAL NOT NULL,
    filenames TEXT[],
    inprogress BOOLEAN,
    fail_dt TIMESTAMP WITHOUT TIME ZONE,
    added TIMESTAMP WITHOUT TIME ZONE,
    sortkey TEXT,
    filename TEXT,
    debundle debundle_options,
    recipe TEXT,
    uparms TEXT,
    capture_files BOOLEAN,
    capture_monitoring BOOLEAN,
    batch TEXT,
    after_batch TEXT,
    error TEXT,
    mem_gb FLOAT,
    host TEXT,
    designated_host TEXT,
    intent TEXT,
    initiatedby TEXT,
    tag TEXT,
    PRIMARY KEY (id),
    UNIQUE (filenames, debundle, recipe, inprogress, fail_dt)
);

CREATE INDEX ix_reducequeue_fail_dt ON reducequeue (fail_dt);

CREATE INDEX ix_reducequeue_inprogress ON reducequeue (inprogress);

CREATE INDEX ix_reducequeue_sortkey ON reducequeue (sortkey);

CREATE TABLE users (
    id SERIAL NOT NULL,
    orcid_id VARCHAR(20),
    noirlab_id TEXT,
    username TEXT NOT NULL,
    fullname TEXT,
    password TEXT,
    salt TEXT,
    email TEXT,
    gemini_staff BOOLEAN,
    misc_upload BOOLEAN,
    user_admin BOOLEAN,
    file_permission_admin BOOLEAN,
    instrument_team TEXT,
    superuser BOOLEAN,
    reset_token TEXT,
    reset_token_expires TIMESTAMP WITHOUT TIME ZONE,
    cookie TEXT,
    account_created TIMESTAMP WITHOUT TIME ZONE,
    password_changed TIMESTAMP WITHOUT TIME ZONE,
    last_login TIMESTAMP WITHOUT TIME ZONE,
    last_login_by TEXT,
    PRIMARY KEY (id)
);

CREATE INDEX ix_users_cookie ON users (cookie);

CREATE INDEX ix_users_orcid_id ON users (orcid_id);

CREATE INDEX ix_users_username ON users (username);

CREATE INDEX ix_users_noirlab_id ON users (noirlab_id);

CREATE TABLE notification (
    id SERIAL NOT NULL,
    label TEXT,
    selection TEXT,
    piemail TEXT,
    ngoemail TEXT,
    csemail TEXT,
    internal BOOLEAN,
    PRIMARY KEY (id)
);

CREATE TABLE processinglog (
    id SERIAL NOT NULL,
    input_files TEXT,
    output_files TEXT,
    num_input_files INTEGER,
    num_output_files INTEGER,
    capture_files BOOLEAN,
    capture_monitoring BOOLEAN,
    debundle TEXT,
    recipe TEXT,
    actual_recipe TEXT,
    processing_tag TEXT,
    processing_started TIMESTAMP WITHOUT TIME ZONE,
    processing_completed TIMESTAMP WITHOUT TIME ZONE,
    cpu_secs FLOAT,
    failed BOOLEAN,
    log TEXT,
    PRIMARY KEY (id)
);

CREATE INDEX ix_processinglog_failed ON processinglog (failed);

CREATE INDEX ix_processinglog_processing_tag ON processinglog (processing_tag);

CREATE TABLE qareport (
    id SERIAL NOT NULL,
    hostname TEXT,
    userid TEXT,
    processid INTEGER,
    executable TEXT,
    software TEXT,
    software_version TEXT,
    context TEXT,
    submit_time TIMESTAMP WITHOUT TIME ZONE,
    submit_host TEXT,
    PRIMARY KEY (id)
);

CREATE TABLE tape (
    id SERIAL NOT NULL,
    label TEXT NOT NULL,
    firstwrite TIMESTAMP WITHOUT TIME ZONE,
    lastwrite TIMESTAMP WITHOUT TIME ZONE,
    lastverified TIMESTAMP WITHOUT TIME ZONE,
    location TEXT,
    lastmoved TIMESTAMP WITHOUT TIME ZONE,
    active BOOLEAN,
    "full" BOOLEAN,
    set INTEGER,
    fate TEXT,
    PRIMARY KEY (id)
);

CREATE INDEX ix_tape_label ON tape (label);

CREATE INDEX ix_tape_full ON tape ("full");

CREATE INDEX ix_tape_active ON tape (active);

CREATE INDEX ix_tape_set ON tape (set);

CREATE TABLE taperead (
    id SERIAL NOT NULL,
    filename TEXT,
    md5 TEXT,
    requester TEXT,
    PRIMARY KEY (id)
);

CREATE INDEX ix_taperead_md5 ON taperead (md5);

CREATE INDEX ix_taperead_filename ON taperead (filename);

CREATE TABLE semester (
    id SERIAL NOT NULL,
    name TEXT NOT NULL,
    start DATE,
    "end" DATE,
    PRIMARY KEY (id)
);

CREATE INDEX ix_semester_name ON semester (name);

CREATE TABLE ipprefix (
    id SERIAL NOT NULL,
    prefix CIDR NOT NULL,
    api_used TEXT,
    api_query_utc TIMESTAMP WITHOUT TIME ZONE,
    asn INTEGER,
    name TEXT,
    description TEXT,
    parent CIDR,
    badness INTEGER,
    allow BOOLEAN,
    deny BOOLEAN,
    PRIMARY KEY (id)
);

CREATE UNIQUE INDEX ix_ipprefix_prefix ON ipprefix (prefix);

CREATE TABLE glacier (
    id SERIAL NOT NULL,
    filename TEXT NOT NULL,
    path TEXT,
    md5 TEXT NOT NULL,
    when_uploaded TIMESTAMP WITHOUT TIME ZONE,
    last_inventory TIMESTAMP WITHOUT TIME ZONE,
    PRIMARY KEY (id)
);

CREATE INDEX ix_glacier_filename ON glacier (filename);

CREATE INDEX ix_glacier_md5 ON glacier (md5);

CREATE TABLE diskfile (
    id SERIAL NOT NULL,
    file_id INTEGER NOT NULL,
    filename TEXT,
    path TEXT,
    present BOOLEAN,
    canonical BOOLEAN,
    file_md5 TEXT,
    file_size BIGINT,
    lastmod TIMESTAMP WITH TIME ZONE,
    entrytime TIMESTAMP WITH TIME ZONE,
    compressed BOOLEAN,
    data_md5 TEXT,
    data_size BIGINT,
    isfits BOOLEAN,
    fvwarnings INTEGER,
    fverrors INTEGER,
    mdready BOOLEAN,
    PRIMARY KEY (id),
    FOREIGN KEY(file_id) REFERENCES file (id)
);

CREATE INDEX ix_diskfile_present ON diskfile (present);

CREATE INDEX ix_diskfile_file_id ON diskfile (file_id);

CREATE INDEX ix_diskfile_entrytime ON diskfile (entrytime);

CREATE INDEX ix_diskfile_lastmod ON diskfile (lastmod);

CREATE INDEX ix_diskfile_canonical ON diskfile (canonical);

CREATE INDEX ix_diskfile_filename ON diskfile (filename);

CREATE TABLE programpublication (
    id SERIAL NOT NULL,
    program_id INTEGER NOT NULL,
    publication_id INTEGER NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(program_id) REFERENCES program (id),
    FOREIGN KEY(publication_id) REFERENCES publication (id)
);

CREATE INDEX ix_programpublication_program_id ON programpublication (program_id);

CREATE INDEX ix_programpublication_publication_id ON programpublication (publication_id);

CREATE TABLE userprogram (
    id SERIAL NOT NULL,
    user_id INTEGER NOT NULL,
    program_id TEXT,
    observation_id TEXT,
    filename TEXT,
    path TEXT,
    PRIMARY KEY (id),
    FOREIGN KEY(user_id) REFERENCES users (id)
);

CREATE INDEX ix_userprogram_filename ON userprogram (filename);

CREATE INDEX ix_userprogram_path ON userprogram (path);

CREATE INDEX ix_userprogram_user_id ON userprogram (user_id);

CREATE INDEX ix_userprogram_observation_id ON userprogram (observation_id);

CREATE INDEX ix_userprogram_program_id ON userprogram (program_id);

CREATE TABLE usagelog (
    id BIGSERIAL NOT NULL,
    utdatetime TIMESTAMP WITHOUT TIME ZONE,
    user_id INTEGER,
    ip_address TEXT,
    user_agent TEXT,
    referer TEXT,
    method TEXT,
    uri TEXT,
    this TEXT,
    bytes BIGINT,
    status INTEGER,
    notes TEXT,
    PRIMARY KEY (id),
    FOREIGN KEY(user_id) REFERENCES users (id)
);

CREATE INDEX ix_usagelog_status ON usagelog (status);

CREATE INDEX ix_usagelog_ip_address ON usagelog (ip_address);

CREATE INDEX ix_usagelog_this ON usagelog (this);

CREATE INDEX ix_usagelog_user_id ON usagelog (user_id);

CREATE INDEX ix_usagelog_utdatetime ON usagelog (utdatetime);

CREATE TABLE processinglog_files (
    id SERIAL NOT NULL,
    processinglog_id INTEGER NOT NULL,
    filename TEXT,
    md5sum TEXT,
    output BOOLEAN,
    PRIMARY KEY (id),
    FOREIGN KEY(processinglog_id) REFERENCES processinglog (id)
);

CREATE INDEX ix_processinglog_files_filename ON processinglog_files (filename);

CREATE INDEX ix_processinglog_files_output ON processinglog_files (output);

CREATE INDEX ix_processinglog_files_processinglog_id ON processinglog_files (processinglog_id);

CREATE INDEX ix_processinglog_files_md5sum ON processinglog_files (md5sum);

CREATE TABLE qametriciq (
    id SERIAL NOT NULL,
    qareport_id INTEGER,
    datalabel TEXT,
    filename TEXT,
    detector TEXT,
    fwhm NUMERIC(6, 3),
    fwhm_std NUMERIC(6, 3),
    isofwhm NUMERIC(6, 3),
    isofwhm_std NUMERIC(6, 3),
    ee50d NUMERIC(6, 3),
    ee50d_std NUMERIC(6, 3),
    elip NUMERIC(5, 3),
    elip_std NUMERIC(5, 3),
    pa NUMERIC(6, 3),
    pa_std NUMERIC(6, 3),
    adaptive_optics BOOLEAN,
    ao_seeing NUMERIC(6, 3),
    strehl NUMERIC(6, 3),
    strehl_std NUMERIC(6, 3),
    nsamples INTEGER,
    percentile_band TEXT,
    comment TEXT,
    PRIMARY KEY (id),
    FOREIGN KEY(qareport_id) REFERENCES qareport (id)
);

CREATE INDEX ix_qametriciq_qareport_id ON qametriciq (qareport_id);

CREATE INDEX ix_qametriciq_datalabel ON qametriciq (datalabel);

CREATE TABLE qametriczp (
    id SERIAL NOT NULL,
    qareport_id INTEGER,
    datalabel TEXT,
    filename TEXT,
    detector TEXT,
    mag NUMERIC(5, 3),
    mag_std NUMERIC(5, 3),
    cloud NUMERIC(5, 3),
    cloud_std NUMERIC(5, 3),
    photref TEXT,
    nsamples INTEGER,
    percentile_band TEXT,
    comment TEXT,
    PRIMARY KEY (id),
    FOREIGN KEY(qareport_id) REFERENCES qareport (id)
);

CREATE INDEX ix_qametriczp_datalabel ON qametriczp (datalabel);

CREATE INDEX ix_qametriczp_qareport_id ON qametriczp (qareport_id);

CREATE TABLE qametricsb (
    id SERIAL NOT NULL,
    qareport_id INTEGER,
    datalabel TEXT,
    filename TEXT,
    detector TEXT,
    mag NUMERIC(5, 3),
    mag_std NUMERIC(5, 3),
    electrons NUMERIC(9, 2),
    electrons_std NUMERIC(7, 2),
    nsamples INTEGER,
    percentile_band TEXT,
    comment TEXT,
    PRIMARY KEY (id),
    FOREIGN KEY(qareport_id) REFERENCES qareport (id)
);

CREATE INDEX ix_qametricsb_datalabel ON qametricsb (datalabel);

CREATE INDEX ix_qametricsb_qareport_id ON qametricsb (qareport_id);

CREATE TABLE qametricpe (
    id SERIAL NOT NULL,
    qareport_id INTEGER,
    datalabel TEXT,
    filename TEXT,
    detector TEXT,
    dra NUMERIC(9, 3),
    dra_std NUMERIC(9, 3),
    ddec NUMERIC(9, 3),
    ddec_std NUMERIC(9, 3),
    astref TEXT,
    nsamples INTEGER,
    comment TEXT,
    PRIMARY KEY (id),
    FOREIGN KEY(qareport_id) REFERENCES qareport (id)
);

CREATE INDEX ix_qametricpe_datalabel ON qametricpe (datalabel);

CREATE INDEX ix_qametricpe_qareport_id ON qametricpe (qareport_id);

CREATE TABLE tapewrite (
    id SERIAL NOT NULL,
    tape_id INTEGER NOT NULL,
    filenum INTEGER,
    startdate TIMESTAMP WITHOUT TIME ZONE,
    enddate TIMESTAMP WITHOUT TIME ZONE,
    succeeded BOOLEAN,
    size BIGINT,
    beforestatus TEXT,
    afterstatus TEXT,
    hostname TEXT,
    tapedrive TEXT,
    notes TEXT,
    PRIMARY KEY (id),
    FOREIGN KEY(tape_id) REFERENCES tape (id)
);

CREATE INDEX ix_tapewrite_tape_id ON tapewrite (tape_id);

CREATE INDEX ix_tapewrite_succeeded ON tapewrite (succeeded);

CREATE INDEX ix_tapewrite_filenum ON tapewrite (filenum);

CREATE TABLE provenance (
    id SERIAL NOT NULL,
    diskfile_id INTEGER,
    timestamp TIMESTAMP WITHOUT TIME ZONE,
    filename TEXT,
    md5 TEXT,
    added_by TEXT,
    PRIMARY KEY (id),
    FOREIGN KEY(diskfile_id) REFERENCES diskfile (id)
);

CREATE INDEX ix_provenance_diskfile_id ON provenance (diskfile_id);

CREATE TABLE history (
    id SERIAL NOT NULL,
    diskfile_id INTEGER,
    timestamp_start TIMESTAMP WITHOUT TIME ZONE,
    timestamp_end TIMESTAMP WITHOUT TIME ZONE,
    primitive TEXT,
    args TEXT,
    PRIMARY KEY (id),
    FOREIGN KEY(diskfile_id) REFERENCES diskfile (id)
);

CREATE INDEX ix_history_diskfile_id ON history (diskfile_id);

CREATE TABLE preview (
    id SERIAL NOT NULL,
    diskfile_id INTEGER NOT NULL,
    filename TEXT,
    PRIMARY KEY (id),
    FOREIGN KEY(diskfile_id) REFERENCES diskfile (id)
);

CREATE INDEX ix_preview_diskfile_id ON preview (diskfile_id);

CREATE TABLE header (
    id SERIAL NOT NULL,
    diskfile_id INTEGER NOT NULL,
    program_id TEXT,
    engineering BOOLEAN,
    science_verification BOOLEAN,
    calibration_program BOOLEAN,
    processing procmode,
    processing_tag TEXT,
    observation_id TEXT,
    data_label TEXT,
    telescope telescope,
    instrument TEXT,
    ut_datetime TIMESTAMP WITHOUT TIME ZONE,
    ut_datetime_secs BIGINT,
    local_time TIME WITHOUT TIME ZONE,
    observation_type obstype,
    observation_class obsclass,
    object TEXT,
    ra NUMERIC(16, 12),
    dec NUMERIC(16, 12),
    azimuth NUMERIC(16, 12),
    elevation NUMERIC(16, 12),
    cass_rotator_pa NUMERIC(16, 12),
    airmass NUMERIC(8, 6),
    filter_name TEXT,
    exposure_time NUMERIC(12, 6),
    disperser TEXT,
    camera TEXT,
    central_wavelength NUMERIC(8, 6),
    wavelength_band TEXT,
    focal_plane_mask TEXT,
    pupil_mask TEXT,
    detector_binning TEXT,
    detector_roi_setting TEXT,
    detector_gain_setting detector_gain_setting,
    detector_readspeed_setting detector_readspeed_setting,
    detector_welldepth_setting detector_welldepth_setting,
    detector_readmode_setting TEXT,
    coadds INTEGER,
    spectroscopy BOOLEAN,
    mode mode,
    adaptive_optics BOOLEAN,
    laser_guide_star BOOLEAN,
    wavefront_sensor TEXT,
    gcal_lamp TEXT,
    raw_iq INTEGER,
    raw_cc INTEGER,
    raw_wv INTEGER,
    raw_bg INTEGER,
    requested_iq INTEGER,
    requested_cc INTEGER,
    requested_wv INTEGER,
    requested_bg INTEGER,
    qa_state qa_state,
    release DATE,
    reduction reduction_state,
    site_monitoring BOOLEAN,
    types TEXT,
    phot_standard BOOLEAN,
    proprietary_coordinates BOOLEAN,
    pre_image BOOLEAN,
    numpix INTEGER,
    PRIMARY KEY (id),
    FOREIGN KEY(diskfile_id) REFERENCES diskfile (id)
);

CREATE INDEX ix_header_data_label ON header (data_label);

CREATE INDEX ix_header_dec ON header (dec);

CREATE INDEX ix_header_ut_datetime_secs ON header (ut_datetime_secs);

CREATE INDEX ix_header_ut_datetime_desc_nullslast ON header (ut_datetime DESC NULLS LAST);

CREATE INDEX ix_header_observation_id ON header (observation_id);

CREATE INDEX ix_header_object ON header (object);

CREATE INDEX ix_header_central_wavelength ON header (central_wavelength);

CREATE INDEX ix_header_calibration_program ON header (calibration_program);

CREATE INDEX ix_header_telescope ON header (telescope);

CREATE INDEX ix_header_filter_name ON header (filter_name);

CREATE INDEX ix_header_mode ON header (mode);

CREATE INDEX ix_header_processing_tag ON header (processing_tag);

CREATE INDEX ix_header_instrument ON header (instrument);

CREATE INDEX ix_header_observation_type ON header (observation_type);

CREATE INDEX ix_header_observation_class ON header (observation_class);

CREATE INDEX ix_header_focal_plane_mask ON header (focal_plane_mask);

CREATE INDEX ix_header_diskfile_id ON header (diskfile_id);

CREATE INDEX ix_header_disperser ON header (disperser);

CREATE INDEX ix_header_pupil_mask ON header (pupil_mask);

CREATE INDEX ix_header_ra ON header (ra);

CREATE INDEX ix_header_reduction ON header (reduction);

CREATE INDEX ix_header_qa_state ON header (qa_state);

CREATE INDEX ix_header_program_id ON header (program_id);

CREATE INDEX ix_header_camera ON header (camera);

CREATE INDEX ix_header_engineering ON header (engineering);

CREATE INDEX ix_header_spectroscopy ON header (spectroscopy);

CREATE INDEX ix_header_ut_datetime ON header (ut_datetime);

CREATE INDEX ix_header_science_verification ON header (science_verification);

CREATE TABLE diskfilereport (
    id SERIAL NOT NULL,
    diskfile_id INTEGER NOT NULL,
    fvreport TEXT,
    mdreport TEXT,
    mdstatus mdstatus,
    PRIMARY KEY (id),
    FOREIGN KEY(diskfile_id) REFERENCES diskfile (id)
);

CREATE INDEX ix_diskfilereport_diskfile_id ON diskfilereport (diskfile_id);

CREATE INDEX ix_diskfilereport_mdstatus ON diskfilereport (mdstatus);

CREATE TABLE fulltextheader (
    id SERIAL NOT NULL,
    diskfile_id INTEGER NOT NULL,
    fulltext TEXT,
    PRIMARY KEY (id),
    FOREIGN KEY(diskfile_id) REFERENCES diskfile (id)
);

CREATE INDEX ix_fulltextheader_diskfile_id ON fulltextheader (diskfile_id);

CREATE TABLE previewqueue (
    id SERIAL NOT NULL,
    diskfile_id INTEGER NOT NULL,
    filename TEXT,
    inprogress BOOLEAN,
    fail_dt TIMESTAMP WITHOUT TIME ZONE,
    force BOOLEAN,
    scavengeonly BOOLEAN,
    sortkey TEXT,
    error TEXT,
    PRIMARY KEY (id),
    UNIQUE (diskfile_id, inprogress, fail_dt),
    FOREIGN KEY(diskfile_id) REFERENCES diskfile (id)
);

CREATE UNIQUE INDEX ix_previewqueue_diskfile_id ON previewqueue (diskfile_id);

CREATE INDEX ix_previewqueue_fail_dt ON previewqueue (fail_dt);

CREATE INDEX ix_previewqueue_sortkey ON previewqueue (sortkey);

CREATE INDEX ix_previewqueue_inprogress ON previewqueue (inprogress);

CREATE TABLE miscfile (
    id SERIAL NOT NULL,
    diskfile_id INTEGER NOT NULL,
    release TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    description TEXT,
    program_id TEXT,
    PRIMARY KEY (id),
    FOREIGN KEY(diskfile_id) REFERENCES diskfile (id)
);

CREATE INDEX ix_miscfile_diskfile_id ON miscfile (diskfile_id);

CREATE INDEX ix_miscfile_program_id ON miscfile (program_id);

CREATE TABLE querylog (
    id SERIAL NOT NULL,
    usagelog_id BIGINT NOT NULL,
    summarytype TEXT,
    selection TEXT,
    numresults INTEGER,
    numcalresults INTEGER,
    query_started TIMESTAMP WITHOUT TIME ZONE,
    query_completed TIMESTAMP WITHOUT TIME ZONE,
    cals_completed TIMESTAMP WITHOUT TIME ZONE,
    summary_completed TIMESTAMP WITHOUT TIME ZONE,
    notes TEXT,
    PRIMARY KEY (id),
    FOREIGN KEY(usagelog_id) REFERENCES usagelog (id)
);

CREATE INDEX ix_querylog_usagelog_id ON querylog (usagelog_id);

CREATE INDEX ix_querylog_summarytype ON querylog (summarytype);

CREATE TABLE downloadlog (
    id SERIAL NOT NULL,
    usagelog_id BIGINT NOT NULL,
    selection TEXT,
    numresults INTEGER,
    sending_files BOOLEAN,
    numdenied INTEGER,
    query_started TIMESTAMP WITHOUT TIME ZONE,
    query_completed TIMESTAMP WITHOUT TIME ZONE,
    download_completed TIMESTAMP WITHOUT TIME ZONE,
    notes TEXT,
    PRIMARY KEY (id),
    FOREIGN KEY(usagelog_id) REFERENCES usagelog (id)
);

CREATE INDEX ix_downloadlog_usagelog_id ON downloadlog (usagelog_id);

CREATE TABLE filedownloadlog (
    id SERIAL NOT NULL,
    usagelog_id BIGINT NOT NULL,
    diskfile_filename TEXT,
    diskfile_file_md5 TEXT,
    diskfile_file_size BIGINT,
    ut_datetime TIMESTAMP WITHOUT TIME ZONE,
    released BOOLEAN,
    pi_access BOOLEAN,
    staff_access BOOLEAN,
    magic_access BOOLEAN,
    eng_access BOOLEAN,
    inst_team_access BOOLEAN,
    canhaveit BOOLEAN,
    notes TEXT,
    PRIMARY KEY (id),
    FOREIGN KEY(usagelog_id) REFERENCES usagelog (id)
);

CREATE INDEX ix_filedownloadlog_usagelog_id ON filedownloadlog (usagelog_id);

CREATE INDEX ix_filedownloadlog_ut_datetime ON filedownloadlog (ut_datetime);

CREATE INDEX ix_filedownloadlog_diskfile_filename ON filedownloadlog (diskfile_filename);

CREATE TABLE fileuploadlog (
    id SERIAL NOT NULL,
    usagelog_id BIGINT NOT NULL,
    ut_transfer_start TIMESTAMP WITHOUT TIME ZONE,
    ut_transfer_complete TIMESTAMP WITHOUT TIME ZONE,
    filename TEXT,
    path TEXT,
    size BIGINT,
    md5 TEXT,
    processed_cal BOOLEAN,
    destination TEXT,
    s3_ut_start TIMESTAMP WITHOUT TIME ZONE,
    s3_ut_end TIMESTAMP WITHOUT TIME ZONE,
    s3_ok BOOLEAN,
    file_ok BOOLEAN,
    notes TEXT,
    PRIMARY KEY (id),
    FOREIGN KEY(usagelog_id) REFERENCES usagelog (id)
);

CREATE INDEX ix_fileuploadlog_usagelog_id ON fileuploadlog (usagelog_id);

CREATE INDEX ix_fileuploadlog_ut_transfer_start ON fileuploadlog (ut_transfer_start);

CREATE INDEX ix_fileuploadlog_filename ON fileuploadlog (filename);

CREATE TABLE obslog (
    id SERIAL NOT NULL,
    diskfile_id INTEGER NOT NULL,
    program_id TEXT,
    date DATE,
    PRIMARY KEY (id),
    FOREIGN KEY(diskfile_id) REFERENCES diskfile (id)
);

CREATE INDEX ix_obslog_program_id ON obslog (program_id);

CREATE INDEX ix_obslog_date ON obslog (date);

CREATE INDEX ix_obslog_diskfile_id ON obslog (diskfile_id);

CREATE TABLE tapefile (
    id SERIAL NOT NULL,
    tapewrite_id INTEGER NOT NULL,
    filename TEXT,
    size BIGINT,
    md5 TEXT,
    compressed BOOLEAN,
    data_size BIGINT,
    data_md5 TEXT,
    lastmod TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (id),
    FOREIGN KEY(tapewrite_id) REFERENCES tapewrite (id)
);

CREATE INDEX ix_tapefile_filename ON tapefile (filename);

CREATE INDEX ix_tapefile_lastmod ON tapefile (lastmod);

CREATE INDEX ix_tapefile_tapewrite_id ON tapefile (tapewrite_id);

CREATE INDEX ix_tapefile_size ON tapefile (size);

CREATE INDEX ix_tapefile_md5 ON tapefile (md5);

CREATE TABLE usagelog_analysis (
    id BIGSERIAL NOT NULL,
    usagelog_id BIGINT NOT NULL,
    utc_analysed TIMESTAMP WITHOUT TIME ZONE,
    prefix_id INTEGER,
    asn INTEGER,
    uri_score INTEGER,
    agent_score INTEGER,
    referer_score INTEGER,
    total_score INTEGER,
    PRIMARY KEY (id),
    FOREIGN KEY(usagelog_id) REFERENCES usagelog (id),
    FOREIGN KEY(prefix_id) REFERENCES ipprefix (id)
);

CREATE INDEX ix_usagelog_analysis_usagelog_id ON usagelog_analysis (usagelog_id);

CREATE INDEX ix_usagelog_analysis_prefix_id ON usagelog_analysis (prefix_id);

CREATE INDEX ix_usagelog_analysis_asn ON usagelog_analysis (asn);

CREATE TABLE reduction (
    id SERIAL NOT NULL,
    header_id INTEGER NOT NULL,
    processing_intent procmode,
    software_mode procmode,
    software_used TEXT,
    software_version TEXT,
    processing_initiated_by TEXT,
    processing_reviewed_by TEXT,
    processing_review_outcome procmode,
    processing_level INTEGER,
    processing_tag TEXT,
    PRIMARY KEY (id),
    FOREIGN KEY(header_id) REFERENCES header (id)
);

CREATE INDEX ix_reduction_processing_level ON reduction (processing_level);

CREATE INDEX ix_reduction_header_id ON reduction (header_id);

CREATE INDEX ix_reduction_processing_intent ON reduction (processing_intent);

CREATE TABLE footprint (
    id SERIAL NOT NULL,
    header_id INTEGER NOT NULL,
    extension TEXT,
    PRIMARY KEY (id),
    FOREIGN KEY(header_id) REFERENCES header (id)
);

CREATE INDEX ix_footprint_header_id ON footprint (header_id);

CREATE TABLE gmos (
    id SERIAL NOT NULL,
    header_id INTEGER NOT NULL,
    disperser TEXT,
    filter_name TEXT,
    detector_x_bin INTEGER,
    detector_y_bin INTEGER,
    array_name TEXT,
    amp_read_area TEXT,
    read_speed_setting gmos_read_speed_setting,
    gain_setting gmos_gain_setting,
    focal_plane_mask TEXT,
    nodandshuffle BOOLEAN,
    nod_count INTEGER,
    nod_pixels INTEGER,
    prepared BOOLEAN,
    overscan_subtracted BOOLEAN,
    overscan_trimmed BOOLEAN,
    grating_order INTEGER,
    PRIMARY KEY (id),
    FOREIGN KEY(header_id) REFERENCES header (id)
);

CREATE INDEX ix_gmos_detector_y_bin ON gmos (detector_y_bin);

CREATE INDEX ix_gmos_array_name ON gmos (array_name);

CREATE INDEX ix_gmos_nod_count ON gmos (nod_count);

CREATE INDEX ix_gmos_detector_x_bin ON gmos (detector_x_bin);

CREATE INDEX ix_gmos_disperser ON gmos (disperser);

CREATE INDEX ix_gmos_nodandshuffle ON gmos (nodandshuffle);

CREATE INDEX ix_gmos_overscan_trimmed ON gmos (overscan_trimmed);

CREATE INDEX ix_gmos_gain_setting ON gmos (gain_setting);

CREATE INDEX ix_gmos_filter_name ON gmos (filter_name);

CREATE INDEX ix_gmos_overscan_subtracted ON gmos (overscan_subtracted);

CREATE INDEX ix_gmos_header_id ON gmos (header_id);

CREATE INDEX ix_gmos_read_speed_setting ON gmos (read_speed_setting);

CREATE INDEX ix_gmos_focal_plane_mask ON gmos (focal_plane_mask);

CREATE INDEX ix_gmos_prepared ON gmos (prepared);

CREATE INDEX ix_gmos_nod_pixels ON gmos (nod_pixels);

CREATE INDEX ix_gmos_amp_read_area ON gmos (amp_read_area);

CREATE TABLE gnirs (
    id SERIAL NOT NULL,
    header_id INTEGER NOT NULL,
    disperser TEXT,
    filter_name TEXT,
    read_mode gnirs_read_mode,
    well_depth_setting gnirs_well_depth_setting,
    camera TEXT,
    focal_plane_mask TEXT,
    array_name TEXT,
    prism_motor_steps INTEGER,
    PRIMARY KEY (id),
    FOREIGN KEY(header_id) REFERENCES header (id)
);

CREATE INDEX ix_gnirs_disperser ON gnirs (disperser);

CREATE INDEX ix_gnirs_camera ON gnirs (camera);

CREATE INDEX ix_gnirs_well_depth_setting ON gnirs (well_depth_setting);

CREATE INDEX ix_gnirs_filter_name ON gnirs (filter_name);

CREATE INDEX ix_gnirs_read_mode ON gnirs (read_mode);

CREATE INDEX ix_gnirs_header_id ON gnirs (header_id);

CREATE TABLE gsaoi (
    id SERIAL NOT NULL,
    header_id INTEGER NOT NULL,
    filter_name TEXT,
    read_mode TEXT,
    PRIMARY KEY (id),
    FOREIGN KEY(header_id) REFERENCES header (id)
);

CREATE INDEX ix_gsaoi_filter_name ON gsaoi (filter_name);

CREATE INDEX ix_gsaoi_read_mode ON gsaoi (read_mode);

CREATE INDEX ix_gsaoi_header_id ON gsaoi (header_id);

CREATE TABLE gpi (
    id SERIAL NOT NULL,
    header_id INTEGER NOT NULL,
    filter_name TEXT,
    disperser TEXT,
    focal_plane_mask TEXT,
    pupil_mask TEXT,
    astrometric_standard BOOLEAN,
    wollaston BOOLEAN,
    prism BOOLEAN,
    PRIMARY KEY (id),
    FOREIGN KEY(header_id) REFERENCES header (id)
);

CREATE INDEX ix_gpi_pupil_mask ON gpi (pupil_mask);

CREATE INDEX ix_gpi_disperser ON gpi (disperser);

CREATE INDEX ix_gpi_header_id ON gpi (header_id);

CREATE INDEX ix_gpi_prism ON gpi (prism);

CREATE INDEX ix_gpi_wollaston ON gpi (wollaston);

CREATE INDEX ix_gpi_focal_plane_mask ON gpi (focal_plane_mask);

CREATE INDEX ix_gpi_astrometric_standard ON gpi (astrometric_standard);

CREATE INDEX ix_gpi_filter_name ON gpi (filter_name);

CREATE TABLE niri (
    id SERIAL NOT NULL,
    header_id INTEGER NOT NULL,
    disperser niri_disperser,
    filter_name TEXT,
    read_mode niri_read_mode,
    well_depth_setting niri_well_depth_setting,
    data_section niri_data_section,
    camera niri_camera,
    focal_plane_mask TEXT,
    PRIMARY KEY (id),
    FOREIGN KEY(header_id) REFERENCES header (id)
);

CREATE INDEX ix_niri_read_mode ON niri (read_mode);

CREATE INDEX ix_niri_well_depth_setting ON niri (well_depth_setting);

CREATE INDEX ix_niri_disperser ON niri (disperser);

CREATE INDEX ix_niri_camera ON niri (camera);

CREATE INDEX ix_niri_header_id ON niri (header_id);

CREATE INDEX ix_niri_data_section ON niri (data_section);

CREATE INDEX ix_niri_filter_name ON niri (filter_name);

CREATE TABLE nici (
    id SERIAL NOT NULL,
    header_id INTEGER NOT NULL,
    filter_name TEXT,
    focal_plane_mask nici_focal_plane_mask,
    disperser nici_disperser,
    PRIMARY KEY (id),
    FOREIGN KEY(header_id) REFERENCES header (id)
);

CREATE INDEX ix_nici_disperser ON nici (disperser);

CREATE INDEX ix_nici_focal_plane_mask ON nici (focal_plane_mask);

CREATE INDEX ix_nici_filter_name ON nici (filter_name);

CREATE INDEX ix_nici_header_id ON nici (header_id);

CREATE TABLE nifs (
    id SERIAL NOT NULL,
    header_id INTEGER NOT NULL,
    disperser TEXT,
    filter_name TEXT,
    read_mode nifs_read_mode,
    focal_plane_mask TEXT,
    PRIMARY KEY (id),
    FOREIGN KEY(header_id) REFERENCES header (id)
);

CREATE INDEX ix_nifs_disperser ON nifs (disperser);

CREATE INDEX ix_nifs_read_mode ON nifs (read_mode);

CREATE INDEX ix_nifs_filter_name ON nifs (filter_name);

CREATE INDEX ix_nifs_header_id ON nifs (header_id);

CREATE TABLE michelle (
    id SERIAL NOT NULL,
    header_id INTEGER NOT NULL,
    disperser michelle_disperser,
    filter_name michelle_filter,
    read_mode michelle_read_mode,
    focal_plane_mask michelle_focal_plane_mask,
    PRIMARY KEY (id),
    FOREIGN KEY(header_id) REFERENCES header (id)
);

CREATE INDEX ix_michelle_header_id ON michelle (header_id);

CREATE INDEX ix_michelle_disperser ON michelle (disperser);

CREATE INDEX ix_michelle_focal_plane_mask ON michelle (focal_plane_mask);

CREATE INDEX ix_michelle_read_mode ON michelle (read_mode);

CREATE INDEX ix_michelle_filter_name ON michelle (filter_name);

CREATE TABLE f2 (
    id SERIAL NOT NULL,
    header_id INTEGER NOT NULL,
    disperser TEXT,
    filter_name TEXT,
    lyot_stop TEXT,
    read_mode TEXT,
    focal_plane_mask TEXT,
    PRIMARY KEY (id),
    FOREIGN KEY(header_id) REFERENCES header (id)
);

CREATE INDEX ix_f2_read_mode ON f2 (read_mode);

CREATE INDEX ix_f2_lyot_stop ON f2 (lyot_stop);

CREATE INDEX ix_f2_filter_name ON f2 (filter_name);

CREATE INDEX ix_f2_disperser ON f2 (disperser);

CREATE INDEX ix_f2_header_id ON f2 (header_id);

CREATE TABLE ghost (
    id SERIAL NOT NULL,
    header_id INTEGER NOT NULL,
    arm ghost_arm NOT NULL,
    want_before_arc BOOLEAN,
    detector_name TEXT,
    detector_x_bin INTEGER,
    detector_y_bin INTEGER,
    exposure_time NUMERIC(8, 4),
    gain_setting ghost_gain_setting,
    read_speed_setting ghost_read_speed_setting,
    focal_plane_mask ghost_focal_plane_masks,
    prepared BOOLEAN,
    overscan_subtracted BOOLEAN,
    overscan_trimmed BOOLEAN,
    PRIMARY KEY (id),
    FOREIGN KEY(header_id) REFERENCES header (id)
);

CREATE INDEX ix_ghost_gain_setting ON ghost (gain_setting);

CREATE INDEX ix_ghost_detector_name ON ghost (detector_name);

CREATE INDEX ix_ghost_detector_y_bin ON ghost (detector_y_bin);

CREATE INDEX ix_ghost_read_speed_setting ON ghost (read_speed_setting);

CREATE INDEX ix_ghost_overscan_subtracted ON ghost (overscan_subtracted);

CREATE INDEX ix_ghost_prepared ON ghost (prepared);

CREATE INDEX ix_ghost_overscan_trimmed ON ghost (overscan_trimmed);

CREATE INDEX ix_ghost_arm ON ghost (arm);

CREATE INDEX ix_ghost_detector_x_bin ON ghost (detector_x_bin);

CREATE INDEX ix_ghost_focal_plane_mask ON ghost (focal_plane_mask);

CREATE INDEX ix_ghost_header_id ON ghost (header_id);

CREATE TABLE calcachequeue (
    id SERIAL NOT NULL,
    obs_hid INTEGER NOT NULL,
    inprogress BOOLEAN,
    fail_dt TIMESTAMP WITHOUT TIME ZONE,
    added TIMESTAMP WITHOUT TIME ZONE,
    sortkey TEXT,
    filename TEXT,
    error TEXT,
    PRIMARY KEY (id),
    UNIQUE (obs_hid, inprogress, fail_dt),
    FOREIGN KEY(obs_hid) REFERENCES header (id)
);

CREATE INDEX ix_calcachequeue_obs_hid ON calcachequeue (obs_hid);

CREATE INDEX ix_calcachequeue_fail_dt ON calcachequeue (fail_dt);

CREATE INDEX ix_calcachequeue_inprogress ON calcachequeue (inprogress);

CREATE INDEX ix_calcachequeue_sortkey ON calcachequeue (sortkey);

CREATE TABLE monitoring (
    id SERIAL NOT NULL,
    filename TEXT,
    data_label TEXT,
    ut_datetime TIMESTAMP WITHOUT TIME ZONE,
    header_id INTEGER,
    software_used TEXT,
    software_version TEXT,
    processing_tag TEXT,
    recipe TEXT,
    keyword TEXT,
    label TEXT,
    adid INTEGER,
    value_int INTEGER,
    value_float FLOAT,
    value_text TEXT,
    notes TEXT,
    PRIMARY KEY (id),
    FOREIGN KEY(header_id) REFERENCES header (id)
);

CREATE INDEX ix_monitoring_ut_datetime ON monitoring (ut_datetime);

CREATE INDEX ix_monitoring_keyword ON monitoring (keyword);

CREATE INDEX ix_monitoring_processing_tag ON monitoring (processing_tag);

CREATE INDEX ix_monitoring_data_label ON monitoring (data_label);

CREATE INDEX ix_monitoring_header_id ON monitoring (header_id);

CREATE INDEX ix_monitoring_filename ON monitoring (filename);

CREATE TABLE objcat (
    id SERIAL NOT NULL,
    header_id INTEGER NOT NULL,
    extnum INTEGER NOT NULL,
    "NUMBER" INTEGER,
    "X_IMAGE" FLOAT,
    "Y_IMAGE" FLOAT,
    "ERRX2_IMAGE" FLOAT,
    "ERRY2_IMAGE" FLOAT,
    "ERRXY_IMAGE" FLOAT,
    "X_WORLD" FLOAT,
    "Y_WORLD" FLOAT,
    "ERRX2_WORLD" FLOAT,
    "ERRY2_WORLD" FLOAT,
    "ERRXY_WORLD" FLOAT,
    "A_IMAGE" FLOAT,
    "B_IMAGE" FLOAT,
    "THETA_IMAGE" FLOAT,
    "ERRA_IMAGE" FLOAT,
    "ERRB_IMAGE" FLOAT,
    "ERRTHETA_IMAGE" FLOAT,
    "A_WORLD" FLOAT,
    "B_WORLD" FLOAT,
    "THETA_WORLD" FLOAT,
    "ERRA_WORLD" FLOAT,
    "ERRB_WORLD" FLOAT,
    "ERRTHETA_WORLD" FLOAT,
    "FWHM_IMAGE" FLOAT,
    "FWHM_WORLD" FLOAT,
    "FLUX_RADIUS" FLOAT,
    "ELLIPTICITY" FLOAT,
    "FLUX_AUTO" FLOAT,
    "FLUXERR_AUTO" FLOAT,
    "MAG_AUTO" FLOAT,
    "MAGERR_AUTO" FLOAT,
    "FLUX_MAX" FLOAT,
    "CLASS_STAR" FLOAT,
    "ISOAREA_IMAGE" INTEGER,
    "FLAGS" INTEGER,
    "IMAFLAGS_ISO" INTEGER,
    "NIMAFLAGS_ISO" INTEGER,
    "BACKGROUND" FLOAT,
    "REF_NUMBER" INTEGER,
    "REF_MAG" FLOAT,
    "REF_MAG_ERR" FLOAT,
    "PROFILE_FWHM" FLOAT,
    "PROFILE_EE50" FLOAT,
    PRIMARY KEY (id),
    FOREIGN KEY(header_id) REFERENCES header (id)
);

CREATE INDEX ix_objcat_header_id ON objcat (header_id);

CREATE TABLE calcache (
    id BIGSERIAL NOT NULL,
    obs_hid INTEGER NOT NULL,
    cal_hid INTEGER NOT NULL,
    rank SMALLINT NOT NULL,
    caltype caltype,
    PRIMARY KEY (id),
    FOREIGN KEY(obs_hid) REFERENCES header (id),
    FOREIGN KEY(cal_hid) REFERENCES header (id)
);

CREATE INDEX ix_calcache_rank ON calcache (rank);

CREATE INDEX ix_calcache_cal_hid ON calcache (cal_hid);

CREATE INDEX ix_calcache_obs_hid ON calcache (obs_hid);

CREATE INDEX ix_calcache_caltype ON calcache (caltype);

CREATE TABLE photstandardobs (
    id SERIAL NOT NULL,
    photstandard_id INTEGER NOT NULL,
    footprint_id INTEGER NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(photstandard_id) REFERENCES photstandard (id),
    FOREIGN KEY(footprint_id) REFERENCES footprint (id)
);

CREATE INDEX ix_photstandardobs_photstandard_id ON photstandardobs (photstandard_id);

CREATE INDEX ix_photstandardobs_footprint_id ON photstandardobs (footprint_id);

-- create_tables() adds these geometry columns outside the ORM; every deployed
-- archive database has them.
ALTER TABLE footprint ADD COLUMN area polygon;
ALTER TABLE photstandard ADD COLUMN coords point;
