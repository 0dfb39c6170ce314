select current_database();
