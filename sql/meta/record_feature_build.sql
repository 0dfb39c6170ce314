delete from meta.feature_build;
insert into meta.feature_build values ($build_key, $as_of, $built_at, cast($defaults_used as varchar[]));
