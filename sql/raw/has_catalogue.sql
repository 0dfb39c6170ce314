select count(*) > 0 from raw.products;
