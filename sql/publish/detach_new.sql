detach database if exists published;
