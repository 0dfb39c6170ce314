select source_file, digest from meta.loaded_files;
