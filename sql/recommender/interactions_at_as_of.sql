-- Training interactions as of the night's as_of: features.user_item_interactions, which the
-- night built from the same macro and settings as interactions.sql, so the 100M+ events of a
-- large shop are not aggregated a second time.
select customer_id, sku, weight
from features.user_item_interactions
where weight > 0;
