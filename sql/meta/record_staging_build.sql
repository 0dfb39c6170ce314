delete from meta.staging_build;
insert into meta.staging_build (build_key, built_at, settings_key, files)
values ($build_key, $built_at, $settings_key, $files);
