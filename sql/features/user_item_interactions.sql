-- Implicit feedback per (customer, SKU) up to $as_of, weighted as the settings say; the
-- definition is the features.weighted_interactions macro (weighted_interactions.sql).
create or replace table features.user_item_interactions as
select *
from features.weighted_interactions(
    $as_of, $weight_view, $weight_cart, $weight_purchase, $half_life_days
)
order by customer_id, sku;

comment on table features.user_item_interactions is 'Implicit feedback per customer and SKU up to as_of, for the recommender.';
comment on column features.user_item_interactions.views is 'Product views (events).';
comment on column features.user_item_interactions.carts is 'Add-to-cart events.';
comment on column features.user_item_interactions.purchases is 'Order lines bought (from orders, not purchase events).';
comment on column features.user_item_interactions.first_at is 'First signal of the pair.';
comment on column features.user_item_interactions.last_at is 'Last signal of the pair up to as_of.';
comment on column features.user_item_interactions.weight is 'Sum over signals of weight (view/cart/purchase, from settings) x 0.5^(age_days / half-life), age at the end of as_of.';
comment on column features.user_item_interactions.customer_id is 'The customer id of order lines, or the user_id of events (a visitor who never ordered has only browsing signals).';
comment on column features.user_item_interactions.sku is 'The product; one row per customer and product with any signal.';
