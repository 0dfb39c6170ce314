select build_key from meta.staging_build;
