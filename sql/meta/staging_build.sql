select build_key, settings_key, files from meta.staging_build;
