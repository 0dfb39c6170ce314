attach $path as published;
