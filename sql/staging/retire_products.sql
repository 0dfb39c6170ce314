-- Products the catalogue listed before tonight and no loaded catalogue lists now are
-- retired (kept, shown inactive in stg_products); a retired product listed again is not.
-- Run only while a catalogue is loaded: without one, stg_products is derived from the
-- order lines, which know every product sold.
delete from meta.retired_products
where sku in (select sku from staging.judged_products where row_status = 'staged');

insert into meta.retired_products by name
select
    before.sku, before.name, before.category, before.unit_cost, before.list_price,
    $run_id as retired_by,
    now() as retired_at
from catalogue_before as before
anti join (
    select sku from staging.judged_products where row_status = 'staged'
) as listed using (sku)
anti join meta.retired_products as retired using (sku);
