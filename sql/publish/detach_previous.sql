detach database if exists previous;
