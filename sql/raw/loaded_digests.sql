select source_file, digest, archive_file from meta.loaded_files;
