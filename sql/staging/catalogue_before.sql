-- The staged catalogue as it was before tonight's judgement, for retire_products.sql.
create or replace temp table catalogue_before as
select sku, name, category, unit_cost, list_price
from staging.judged_products
where row_status = 'staged' and sku is not null;
