-- Training interactions as of $end_date (the holdout cutoff; as_of reads the feature table).
select customer_id, sku, weight
from features.weighted_interactions(
    $end_date, $weight_view, $weight_cart, $weight_purchase, $half_life_days
)
where weight > 0;
