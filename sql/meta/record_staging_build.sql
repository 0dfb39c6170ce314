delete from meta.staging_build;
insert into meta.staging_build values ($build_key, $built_at);
