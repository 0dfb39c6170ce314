select build_key, defaults_used from meta.feature_build;
