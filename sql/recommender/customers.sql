-- Every customer or visitor id seen up to $as_of (bought, or browsed under a visitor id that
-- returns with its cookie; a signed-in visitor's id is the customer id), with the country of
-- their latest order line (NULL when they never ordered). All of them train the model, but
-- only `served` ones get a list: every customer, and visitors seen in the last
-- $visitor_days days (0: every visitor). A shop's visitor ids are mostly one-off cookies,
-- and serving each one ever seen grows the mart with every night's traffic.
with buyers as (
    select customer_id, arg_max(country, ordered_at) as country
    from staging.stg_orders
    where customer_id is not null and order_date <= $as_of
    group by customer_id
),

visitors as (
    select user_id as customer_id, max(event_date) as last_seen
    from staging.stg_events
    where user_id is not null and event_date <= $as_of
    group by user_id
),

final as (
    select
        customer_id,
        b.country,
        b.customer_id is not null
        or cast($visitor_days as integer) = 0
        or v.last_seen > cast($as_of as date) - cast($visitor_days as integer) as served
    from buyers as b
    full outer join visitors as v using (customer_id)
)

select * from final
order by customer_id;
