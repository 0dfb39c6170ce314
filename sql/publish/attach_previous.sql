attach $path as previous (read_only);
